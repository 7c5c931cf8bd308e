//===- kiln-translate.cpp - translate to and from the kiln dialect --------===//
//
// `kiln-translate --import-onnx model.onnx` prints the imported module.
// External-data files are found next to the model.
//
//===----------------------------------------------------------------------===//

#include "compiler/onnx/OnnxImporter.h"

#include "mlir/Tools/mlir-translate/MlirTranslateMain.h"

int main(int argc, char **argv) {
  kiln::registerOnnxImportTranslation();
  return mlir::failed(
      mlir::mlirTranslateMain(argc, argv, "kiln translation driver\n"));
}
