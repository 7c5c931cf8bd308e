# -*- Python -*-
# lit configuration for kiln: FileCheck tests of the dialect, the importer
# and the passes. `%kiln-onnx-text` turns ONNX's textual syntax into a binary
# model with the onnx package's own parser, so importer tests stay readable.
import os

import lit.formats
from lit.llvm import llvm_config

config.name = "kiln"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".onnxtext", ".test"]
config.excludes = ["Inputs", "onnx-node-tests", "models", "corpus", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py", "unit"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.kiln_obj_root, "test")

llvm_config.with_system_environment(["HOME", "TMPDIR"])
llvm_config.use_default_substitutions()

config.substitutions.append(
    ("%kiln-onnx-text", f"{config.kiln_python} {config.test_source_root}/lit/onnx_text.py"))
config.substitutions.append(("%kiln-python", config.kiln_python))
config.substitutions.append(("%fixtures", os.path.join(config.test_source_root, "fixtures")))

tool_dirs = [config.kiln_tools_dir, config.llvm_tools_dir]
llvm_config.add_tool_substitutions(["kiln-opt", "kiln-translate", "kilnc", "kiln"], tool_dirs)
llvm_config.add_tool_substitutions(["FileCheck", "not", "count", "split-file"], [config.llvm_tools_dir])
