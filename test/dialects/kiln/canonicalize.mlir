// RUN: kiln-opt %s -canonicalize -split-input-file | FileCheck %s
//
// The kiln folders and canonicalization patterns (KilnOps.cpp): integer
// shape arithmetic on constants folds, static shape queries become
// constants, identity transposes and reshapes disappear, and a reshape
// whose shape operand the result type already states drops it. Each
// positive case has a neighbour where the rewrite must not fire.

// CHECK-LABEL: func.func @add_constants
// CHECK-NEXT: %[[C:.+]] = kiln.constant dense<[11, 22]> : tensor<2xi64>
// CHECK-NEXT: return %[[C]]
func.func @add_constants() -> tensor<2xi64> {
  %a = kiln.constant dense<[1, 2]> : tensor<2xi64>
  %b = kiln.constant dense<[10, 20]> : tensor<2xi64>
  %c = kiln.add %a, %b : (tensor<2xi64>, tensor<2xi64>) -> tensor<2xi64>
  return %c : tensor<2xi64>
}

// -----

// A scalar operand broadcasts.
// CHECK-LABEL: func.func @sub_constants
// CHECK-NEXT: %[[C:.+]] = kiln.constant dense<[9, 19]> : tensor<2xi64>
// CHECK-NEXT: return %[[C]]
func.func @sub_constants() -> tensor<2xi64> {
  %a = kiln.constant dense<[10, 20]> : tensor<2xi64>
  %b = kiln.constant dense<1> : tensor<i64>
  %c = kiln.sub %a, %b : (tensor<2xi64>, tensor<i64>) -> tensor<2xi64>
  return %c : tensor<2xi64>
}

// -----

// CHECK-LABEL: func.func @mul_constants
// CHECK-NEXT: %[[C:.+]] = kiln.constant dense<[8, 15]> : tensor<2xi64>
// CHECK-NEXT: return %[[C]]
func.func @mul_constants() -> tensor<2xi64> {
  %a = kiln.constant dense<[2, 3]> : tensor<2xi64>
  %b = kiln.constant dense<[4, 5]> : tensor<2xi64>
  %c = kiln.mul %a, %b : (tensor<2xi64>, tensor<2xi64>) -> tensor<2xi64>
  return %c : tensor<2xi64>
}

// -----

// Integer division truncates toward zero, as ONNX Div does.
// CHECK-LABEL: func.func @div_truncates
// CHECK-NEXT: %[[C:.+]] = kiln.constant dense<-3> : tensor<i64>
// CHECK-NEXT: return %[[C]]
func.func @div_truncates() -> tensor<i64> {
  %a = kiln.constant dense<-7> : tensor<i64>
  %b = kiln.constant dense<2> : tensor<i64>
  %c = kiln.div %a, %b : (tensor<i64>, tensor<i64>) -> tensor<i64>
  return %c : tensor<i64>
}

// -----

// The folded constant keeps the result's element type.
// CHECK-LABEL: func.func @div_i32
// CHECK-NEXT: %[[C:.+]] = kiln.constant dense<[2, 3]> : tensor<2xi32>
// CHECK-NEXT: return %[[C]]
func.func @div_i32() -> tensor<2xi32> {
  %a = kiln.constant dense<[6, 9]> : tensor<2xi32>
  %b = kiln.constant dense<3> : tensor<i32>
  %c = kiln.div %a, %b : (tensor<2xi32>, tensor<i32>) -> tensor<2xi32>
  return %c : tensor<2xi32>
}

// -----

// CHECK-LABEL: func.func @div_by_zero_not_folded
// CHECK: %[[D:.+]] = kiln.div
// CHECK: return %[[D]]
func.func @div_by_zero_not_folded() -> tensor<i64> {
  %a = kiln.constant dense<4> : tensor<i64>
  %b = kiln.constant dense<0> : tensor<i64>
  %c = kiln.div %a, %b : (tensor<i64>, tensor<i64>) -> tensor<i64>
  return %c : tensor<i64>
}

// -----

// CHECK-LABEL: func.func @add_non_constant_not_folded
// CHECK: %[[S:.+]] = kiln.add
// CHECK: return %[[S]]
func.func @add_non_constant_not_folded(%x: tensor<2xi64>) -> tensor<2xi64> {
  %a = kiln.constant dense<[1, 2]> : tensor<2xi64>
  %c = kiln.add %a, %x : (tensor<2xi64>, tensor<2xi64>) -> tensor<2xi64>
  return %c : tensor<2xi64>
}

// -----

// Only integer shape arithmetic folds; float data is left to later passes.
// CHECK-LABEL: func.func @add_float_not_folded
// CHECK: %[[S:.+]] = kiln.add
// CHECK: return %[[S]]
func.func @add_float_not_folded() -> tensor<2xf32> {
  %a = kiln.constant dense<[1.0, 2.0]> : tensor<2xf32>
  %c = kiln.add %a, %a : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  return %c : tensor<2xf32>
}

// -----

// Shapes are rank 0 or 1; a 2-D integer tensor is data.
// CHECK-LABEL: func.func @add_rank2_not_folded
// CHECK: %[[S:.+]] = kiln.add
// CHECK: return %[[S]]
func.func @add_rank2_not_folded() -> tensor<2x2xi64> {
  %a = kiln.constant dense<[[1, 2], [3, 4]]> : tensor<2x2xi64>
  %c = kiln.add %a, %a : (tensor<2x2xi64>, tensor<2x2xi64>) -> tensor<2x2xi64>
  return %c : tensor<2x2xi64>
}

// -----

// CHECK-LABEL: func.func @concat_constants
// CHECK-NEXT: %[[C:.+]] = kiln.constant dense<[1, 2, 3]> : tensor<3xi64>
// CHECK-NEXT: return %[[C]]
func.func @concat_constants() -> tensor<3xi64> {
  %a = kiln.constant dense<[1]> : tensor<1xi64>
  %b = kiln.constant dense<[2, 3]> : tensor<2xi64>
  %c = kiln.concat %a, %b {axis = 0 : i64} : (tensor<1xi64>, tensor<2xi64>) -> tensor<3xi64>
  return %c : tensor<3xi64>
}

// -----

// CHECK-LABEL: func.func @concat_single_input
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x8xf32>)
// CHECK-NEXT: return %[[X]]
func.func @concat_single_input(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %c = kiln.concat %x {axis = 0 : i64} : (tensor<?x8xf32>) -> tensor<?x8xf32>
  return %c : tensor<?x8xf32>
}

// -----

// CHECK-LABEL: func.func @concat_non_constant_not_folded
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<2xi64>)
// CHECK: %[[C:.+]] = kiln.concat %{{.+}}, %[[X]]
// CHECK: return %[[C]]
func.func @concat_non_constant_not_folded(%x: tensor<2xi64>) -> tensor<3xi64> {
  %a = kiln.constant dense<[1]> : tensor<1xi64>
  %c = kiln.concat %a, %x {axis = 0 : i64} : (tensor<1xi64>, tensor<2xi64>) -> tensor<3xi64>
  return %c : tensor<3xi64>
}

// -----

// CHECK-LABEL: func.func @gather_constants
// CHECK-NEXT: %[[C:.+]] = kiln.constant dense<[30, 10]> : tensor<2xi64>
// CHECK-NEXT: return %[[C]]
func.func @gather_constants() -> tensor<2xi64> {
  %a = kiln.constant dense<[10, 20, 30]> : tensor<3xi64>
  %i = kiln.constant dense<[2, -3]> : tensor<2xi64>
  %g = kiln.gather %a, %i {axis = 0 : i64} : (tensor<3xi64>, tensor<2xi64>) -> tensor<2xi64>
  return %g : tensor<2xi64>
}

// -----

// CHECK-LABEL: func.func @gather_runtime_indices_not_folded
// CHECK-SAME: (%[[I:[a-z0-9]+]]: tensor<2xi64>)
// CHECK: %[[G:.+]] = kiln.gather %{{.+}}, %[[I]]
// CHECK: return %[[G]]
func.func @gather_runtime_indices_not_folded(%i: tensor<2xi64>) -> tensor<2xi64> {
  %a = kiln.constant dense<[10, 20, 30]> : tensor<3xi64>
  %g = kiln.gather %a, %i {axis = 0 : i64} : (tensor<3xi64>, tensor<2xi64>) -> tensor<2xi64>
  return %g : tensor<2xi64>
}

// -----

// i64 <-> i32 casts of shape constants fold.
// CHECK-LABEL: func.func @cast_constant
// CHECK-NEXT: %[[C:.+]] = kiln.constant dense<[-1, 4]> : tensor<2xi32>
// CHECK-NEXT: return %[[C]]
func.func @cast_constant() -> tensor<2xi32> {
  %a = kiln.constant dense<[-1, 4]> : tensor<2xi64>
  %c = kiln.cast %a : tensor<2xi64> -> tensor<2xi32>
  return %c : tensor<2xi32>
}

// -----

// CHECK-LABEL: func.func @cast_same_type
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?xf32>)
// CHECK-NEXT: return %[[X]]
func.func @cast_same_type(%x: tensor<?xf32>) -> tensor<?xf32> {
  %c = kiln.cast %x : tensor<?xf32> -> tensor<?xf32>
  return %c : tensor<?xf32>
}

// -----

// CHECK-LABEL: func.func @cast_float_constant_not_folded
// CHECK: %[[C:.+]] = kiln.cast
// CHECK: return %[[C]]
func.func @cast_float_constant_not_folded() -> tensor<2xi64> {
  %a = kiln.constant dense<[1.5, 2.0]> : tensor<2xf32>
  %c = kiln.cast %a : tensor<2xf32> -> tensor<2xi64>
  return %c : tensor<2xi64>
}

// -----

// A cast to bool is not a shape computation.
// CHECK-LABEL: func.func @cast_to_bool_not_folded
// CHECK: %[[C:.+]] = kiln.cast
// CHECK: return %[[C]]
func.func @cast_to_bool_not_folded() -> tensor<2xi1> {
  %a = kiln.constant dense<[0, 3]> : tensor<2xi64>
  %c = kiln.cast %a : tensor<2xi64> -> tensor<2xi1>
  return %c : tensor<2xi1>
}

// -----

// CHECK-LABEL: func.func @shape_static
// CHECK-NEXT: %[[C:.+]] = kiln.constant dense<[2, 3, 4]> : tensor<3xi64>
// CHECK-NEXT: return %[[C]]
func.func @shape_static(%x: tensor<2x3x4xf32>) -> tensor<3xi64> {
  %s = kiln.shape %x : tensor<2x3x4xf32> -> tensor<3xi64>
  return %s : tensor<3xi64>
}

// -----

// CHECK-LABEL: func.func @shape_static_slice
// CHECK-NEXT: %[[C:.+]] = kiln.constant dense<[3, 4]> : tensor<2xi64>
// CHECK-NEXT: return %[[C]]
func.func @shape_static_slice(%x: tensor<2x3x4xf32>) -> tensor<2xi64> {
  %s = kiln.shape %x {start = 1 : i64} : tensor<2x3x4xf32> -> tensor<2xi64>
  return %s : tensor<2xi64>
}

// -----

// A dynamic shape stays a kiln.shape: no concat or slice uses its parts,
// so splitting it into kiln.dims (ExpandShape) would gain nothing.
// CHECK-LABEL: func.func @shape_dynamic_kept
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x3xf32, #kiln.dims<[b]>>)
// CHECK-NEXT: %[[S:.+]] = kiln.shape %[[X]]
// CHECK-NEXT: return %[[S]]
func.func @shape_dynamic_kept(%x: tensor<?x3xf32, #kiln.dims<[b]>>) -> tensor<2xi64> {
  %s = kiln.shape %x : tensor<?x3xf32, #kiln.dims<[b]>> -> tensor<2xi64>
  return %s : tensor<2xi64>
}

// -----

// CHECK-LABEL: func.func @dim_static
// CHECK-NEXT: %[[C:.+]] = kiln.constant dense<3> : tensor<i64>
// CHECK-NEXT: return %[[C]]
func.func @dim_static(%x: tensor<?x3xf32, #kiln.dims<[b]>>) -> tensor<i64> {
  %d = kiln.dim %x[1] : tensor<?x3xf32, #kiln.dims<[b]>> -> tensor<i64>
  return %d : tensor<i64>
}

// -----

// CHECK-LABEL: func.func @dim_dynamic_kept
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x3xf32, #kiln.dims<[b]>>)
// CHECK-NEXT: %[[D:.+]] = kiln.dim %[[X]][0] : tensor<?x3xf32, #kiln.dims<[b]>> -> tensor<1xi64>
// CHECK-NEXT: return %[[D]]
func.func @dim_dynamic_kept(%x: tensor<?x3xf32, #kiln.dims<[b]>>) -> tensor<1xi64> {
  %d = kiln.dim %x[0] : tensor<?x3xf32, #kiln.dims<[b]>> -> tensor<1xi64>
  return %d : tensor<1xi64>
}

// -----

// CHECK-LABEL: func.func @size_static
// CHECK-NEXT: %[[C:.+]] = kiln.constant dense<24> : tensor<i64>
// CHECK-NEXT: return %[[C]]
func.func @size_static(%x: tensor<2x3x4xf32>) -> tensor<i64> {
  %n = kiln.size %x : tensor<2x3x4xf32> -> tensor<i64>
  return %n : tensor<i64>
}

// -----

// CHECK-LABEL: func.func @size_dynamic_kept
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x3xf32, #kiln.dims<[b]>>)
// CHECK-NEXT: %[[N:.+]] = kiln.size %[[X]]
// CHECK-NEXT: return %[[N]]
func.func @size_dynamic_kept(%x: tensor<?x3xf32, #kiln.dims<[b]>>) -> tensor<i64> {
  %n = kiln.size %x : tensor<?x3xf32, #kiln.dims<[b]>> -> tensor<i64>
  return %n : tensor<i64>
}

// -----

// CHECK-LABEL: func.func @transpose_identity
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x4xf32, #kiln.dims<[b]>>)
// CHECK-NEXT: return %[[X]]
func.func @transpose_identity(%x: tensor<?x4xf32, #kiln.dims<[b]>>) -> tensor<?x4xf32, #kiln.dims<[b]>> {
  %t = kiln.transpose %x {perm = array<i64: 0, 1>} : tensor<?x4xf32, #kiln.dims<[b]>> -> tensor<?x4xf32, #kiln.dims<[b]>>
  return %t : tensor<?x4xf32, #kiln.dims<[b]>>
}

// -----

// CHECK-LABEL: func.func @transpose_kept
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x4xf32, #kiln.dims<[b]>>)
// CHECK-NEXT: %[[T:.+]] = kiln.transpose %[[X]] {perm = array<i64: 1, 0>}
// CHECK-NEXT: return %[[T]]
func.func @transpose_kept(%x: tensor<?x4xf32, #kiln.dims<[b]>>) -> tensor<4x?xf32, #kiln.dims<[b]>> {
  %t = kiln.transpose %x {perm = array<i64: 1, 0>} : tensor<?x4xf32, #kiln.dims<[b]>> -> tensor<4x?xf32, #kiln.dims<[b]>>
  return %t : tensor<4x?xf32, #kiln.dims<[b]>>
}

// -----

// An identity permutation whose result type says more than its input's
// (a name for the dynamic dim) is kept: folding would lose the name.
// CHECK-LABEL: func.func @transpose_identity_refining_type_kept
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x4xf32>)
// CHECK-NEXT: %[[T:.+]] = kiln.transpose %[[X]] {perm = array<i64: 0, 1>} : tensor<?x4xf32> -> tensor<?x4xf32, #kiln.dims<[b]>>
// CHECK-NEXT: return %[[T]]
func.func @transpose_identity_refining_type_kept(%x: tensor<?x4xf32>) -> tensor<?x4xf32, #kiln.dims<[b]>> {
  %t = kiln.transpose %x {perm = array<i64: 0, 1>} : tensor<?x4xf32> -> tensor<?x4xf32, #kiln.dims<[b]>>
  return %t : tensor<?x4xf32, #kiln.dims<[b]>>
}

// -----

// CHECK-LABEL: func.func @reshape_identity
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x4xf32, #kiln.dims<[b]>>)
// CHECK-NEXT: return %[[X]]
func.func @reshape_identity(%x: tensor<?x4xf32, #kiln.dims<[b]>>) -> tensor<?x4xf32, #kiln.dims<[b]>> {
  %r = kiln.reshape %x : tensor<?x4xf32, #kiln.dims<[b]>> -> tensor<?x4xf32, #kiln.dims<[b]>>
  return %r : tensor<?x4xf32, #kiln.dims<[b]>>
}

// -----

// CHECK-LABEL: func.func @reshape_kept
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x4xf32, #kiln.dims<[b]>>)
// CHECK-NEXT: %[[R:.+]] = kiln.reshape %[[X]] : tensor<?x4xf32, #kiln.dims<[b]>> -> tensor<?x2x2xf32, #kiln.dims<[b]>>
// CHECK-NEXT: return %[[R]]
func.func @reshape_kept(%x: tensor<?x4xf32, #kiln.dims<[b]>>) -> tensor<?x2x2xf32, #kiln.dims<[b]>> {
  %r = kiln.reshape %x : tensor<?x4xf32, #kiln.dims<[b]>> -> tensor<?x2x2xf32, #kiln.dims<[b]>>
  return %r : tensor<?x2x2xf32, #kiln.dims<[b]>>
}

// -----

// CHECK-LABEL: func.func @reshape_constant
// CHECK-NEXT: %[[C:.+]] = kiln.constant dense<{{\[}}[1, 2], [3, 4]]> : tensor<2x2xi64>
// CHECK-NEXT: return %[[C]]
func.func @reshape_constant() -> tensor<2x2xi64> {
  %a = kiln.constant dense<[1, 2, 3, 4]> : tensor<4xi64>
  %r = kiln.reshape %a : tensor<4xi64> -> tensor<2x2xi64>
  return %r : tensor<2x2xi64>
}

// -----

// CHECK-LABEL: func.func @reshape_of_reshape
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x64xf32, #kiln.dims<[b]>>)
// CHECK-NEXT: %[[R:.+]] = kiln.reshape %[[X]] : tensor<?x64xf32, #kiln.dims<[b]>> -> tensor<?x8x8xf32, #kiln.dims<[b]>>
// CHECK-NEXT: return %[[R]]
func.func @reshape_of_reshape(%x: tensor<?x64xf32, #kiln.dims<[b]>>) -> tensor<?x8x8xf32, #kiln.dims<[b]>> {
  %a = kiln.reshape %x : tensor<?x64xf32, #kiln.dims<[b]>> -> tensor<?x4x16xf32, #kiln.dims<[b]>>
  %r = kiln.reshape %a : tensor<?x4x16xf32, #kiln.dims<[b]>> -> tensor<?x8x8xf32, #kiln.dims<[b]>>
  return %r : tensor<?x8x8xf32, #kiln.dims<[b]>>
}

// -----

// The inner reshape depends on a run-time shape: the two stay.
// CHECK-LABEL: func.func @reshape_of_runtime_reshape_kept
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x64xf32, #kiln.dims<[b]>>, %[[S:[a-z0-9]+]]: tensor<3xi64>)
// CHECK-NEXT: %[[A:.+]] = kiln.reshape %[[X]], %[[S]] : tensor<3xi64> : tensor<?x64xf32, #kiln.dims<[b]>> -> tensor<?x?x?xf32>
// CHECK-NEXT: %[[R:.+]] = kiln.reshape %[[A]] : tensor<?x?x?xf32> -> tensor<?x64xf32, #kiln.dims<[b]>>
// CHECK-NEXT: return %[[R]]
func.func @reshape_of_runtime_reshape_kept(%x: tensor<?x64xf32, #kiln.dims<[b]>>, %s: tensor<3xi64>) -> tensor<?x64xf32, #kiln.dims<[b]>> {
  %a = kiln.reshape %x, %s : tensor<3xi64> : tensor<?x64xf32, #kiln.dims<[b]>> -> tensor<?x?x?xf32>
  %r = kiln.reshape %a : tensor<?x?x?xf32> -> tensor<?x64xf32, #kiln.dims<[b]>>
  return %r : tensor<?x64xf32, #kiln.dims<[b]>>
}

// -----

// [0, 0, 4, -1] resolves to exactly the result type: the operand goes.
// CHECK-LABEL: func.func @drop_known_reshape_shape
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x?x64xf32, #kiln.dims<[b, s]>>)
// CHECK-NEXT: %[[R:.+]] = kiln.reshape %[[X]] : tensor<?x?x64xf32, #kiln.dims<[b, s]>> -> tensor<?x?x4x16xf32, #kiln.dims<[b, s]>>
// CHECK-NEXT: return %[[R]]
func.func @drop_known_reshape_shape(%x: tensor<?x?x64xf32, #kiln.dims<[b, s]>>) -> tensor<?x?x4x16xf32, #kiln.dims<[b, s]>> {
  %s = kiln.constant dense<[0, 0, 4, -1]> : tensor<4xi64>
  %r = kiln.reshape %x, %s : tensor<4xi64> : tensor<?x?x64xf32, #kiln.dims<[b, s]>> -> tensor<?x?x4x16xf32, #kiln.dims<[b, s]>>
  return %r : tensor<?x?x4x16xf32, #kiln.dims<[b, s]>>
}

// -----

// The exporter chain Shape -> Gather -> Concat: once the reshape drops
// the operand the chain is dead.
// CHECK-LABEL: func.func @drop_shape_chain
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x?x64xf32, #kiln.dims<[b, s]>>)
// CHECK-NOT: kiln.shape
// CHECK-NOT: kiln.concat
// CHECK: %[[R:.+]] = kiln.reshape %[[X]] : tensor<?x?x64xf32, #kiln.dims<[b, s]>> -> tensor<?x?x4x16xf32, #kiln.dims<[b, s]>>
// CHECK-NEXT: return %[[R]]
func.func @drop_shape_chain(%x: tensor<?x?x64xf32, #kiln.dims<[b, s]>>) -> tensor<?x?x4x16xf32, #kiln.dims<[b, s]>> {
  %s = kiln.shape %x : tensor<?x?x64xf32, #kiln.dims<[b, s]>> -> tensor<3xi64>
  %i = kiln.constant dense<[0, 1]> : tensor<2xi64>
  %bs = kiln.gather %s, %i {axis = 0 : i64} : (tensor<3xi64>, tensor<2xi64>) -> tensor<2xi64>
  %c = kiln.constant dense<[4, 16]> : tensor<2xi64>
  %t = kiln.concat %bs, %c {axis = 0 : i64} : (tensor<2xi64>, tensor<2xi64>) -> tensor<4xi64>
  %r = kiln.reshape %x, %t : tensor<4xi64> : tensor<?x?x64xf32, #kiln.dims<[b, s]>> -> tensor<?x?x4x16xf32, #kiln.dims<[b, s]>>
  return %r : tensor<?x?x4x16xf32, #kiln.dims<[b, s]>>
}

// -----

// CHECK-LABEL: func.func @reshape_runtime_shape_kept
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x?x64xf32, #kiln.dims<[b, s]>>, %[[S:[a-z0-9]+]]: tensor<4xi64>)
// CHECK-NEXT: %[[R:.+]] = kiln.reshape %[[X]], %[[S]] : tensor<4xi64> :
// CHECK-NEXT: return %[[R]]
func.func @reshape_runtime_shape_kept(%x: tensor<?x?x64xf32, #kiln.dims<[b, s]>>, %s: tensor<4xi64>) -> tensor<?x?x4x16xf32> {
  %r = kiln.reshape %x, %s : tensor<4xi64> : tensor<?x?x64xf32, #kiln.dims<[b, s]>> -> tensor<?x?x4x16xf32>
  return %r : tensor<?x?x4x16xf32>
}

// -----

// The -1 of [-1, 4] over unnamed dims is unknown, so the shape operand
// still carries information the type lacks.
// CHECK-LABEL: func.func @reshape_unresolved_shape_kept
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x?xf32>)
// CHECK: %[[S:.+]] = kiln.constant dense<[-1, 4]> : tensor<2xi64>
// CHECK-NEXT: %[[R:.+]] = kiln.reshape %[[X]], %[[S]] : tensor<2xi64> : tensor<?x?xf32> -> tensor<?x4xf32>
// CHECK-NEXT: return %[[R]]
func.func @reshape_unresolved_shape_kept(%x: tensor<?x?xf32>) -> tensor<?x4xf32> {
  %s = kiln.constant dense<[-1, 4]> : tensor<2xi64>
  %r = kiln.reshape %x, %s : tensor<2xi64> : tensor<?x?xf32> -> tensor<?x4xf32>
  return %r : tensor<?x4xf32>
}

// -----

// shape(x)[1] reads one dimension.
// CHECK-LABEL: func.func @gather_of_shape
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x?x64xf32, #kiln.dims<[b, s]>>)
// CHECK-NEXT: %[[D:.+]] = kiln.dim %[[X]][1] : tensor<?x?x64xf32, #kiln.dims<[b, s]>> -> tensor<1xi64>
// CHECK-NEXT: return %[[D]]
func.func @gather_of_shape(%x: tensor<?x?x64xf32, #kiln.dims<[b, s]>>) -> tensor<1xi64> {
  %s = kiln.shape %x : tensor<?x?x64xf32, #kiln.dims<[b, s]>> -> tensor<3xi64>
  %i = kiln.constant dense<[1]> : tensor<1xi64>
  %g = kiln.gather %s, %i {axis = 0 : i64} : (tensor<3xi64>, tensor<1xi64>) -> tensor<1xi64>
  return %g : tensor<1xi64>
}

// -----

// A negative index counts from the end of the (sliced) shape; a static
// dimension then folds to a constant.
// CHECK-LABEL: func.func @gather_of_sliced_shape
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x?x64xf32, #kiln.dims<[b, s]>>)
// CHECK-DAG: %[[C:.+]] = kiln.constant dense<64> : tensor<i64>
// CHECK-DAG: %[[D:.+]] = kiln.dim %[[X]][1] : tensor<?x?x64xf32, #kiln.dims<[b, s]>> -> tensor<i64>
// CHECK: return %[[D]], %[[C]]
func.func @gather_of_sliced_shape(%x: tensor<?x?x64xf32, #kiln.dims<[b, s]>>) -> (tensor<i64>, tensor<i64>) {
  %s = kiln.shape %x {start = 1 : i64} : tensor<?x?x64xf32, #kiln.dims<[b, s]>> -> tensor<2xi64>
  %i = kiln.constant dense<0> : tensor<i64>
  %g = kiln.gather %s, %i {axis = 0 : i64} : (tensor<2xi64>, tensor<i64>) -> tensor<i64>
  %j = kiln.constant dense<-1> : tensor<i64>
  %h = kiln.gather %s, %j {axis = 0 : i64} : (tensor<2xi64>, tensor<i64>) -> tensor<i64>
  return %g, %h : tensor<i64>, tensor<i64>
}

// -----

// CHECK-LABEL: func.func @gather_of_shape_runtime_index_kept
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x?x64xf32, #kiln.dims<[b, s]>>, %[[I:[a-z0-9]+]]: tensor<i64>)
// CHECK-NEXT: %[[S:.+]] = kiln.shape %[[X]]
// CHECK-NEXT: %[[G:.+]] = kiln.gather %[[S]], %[[I]]
// CHECK-NEXT: return %[[G]]
func.func @gather_of_shape_runtime_index_kept(%x: tensor<?x?x64xf32, #kiln.dims<[b, s]>>, %i: tensor<i64>) -> tensor<i64> {
  %s = kiln.shape %x : tensor<?x?x64xf32, #kiln.dims<[b, s]>> -> tensor<3xi64>
  %g = kiln.gather %s, %i {axis = 0 : i64} : (tensor<3xi64>, tensor<i64>) -> tensor<i64>
  return %g : tensor<i64>
}

// -----

// A dynamic shape feeding a concat is split into its parts: kiln.dim for
// dynamic dims, constants for static ones.
// CHECK-LABEL: func.func @expand_shape
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x?x64xf32, #kiln.dims<[b, s]>>)
// CHECK-DAG: %[[C64:.+]] = kiln.constant dense<64> : tensor<1xi64>
// CHECK-DAG: %[[C7:.+]] = kiln.constant dense<7> : tensor<1xi64>
// CHECK-DAG: %[[D0:.+]] = kiln.dim %[[X]][0] : tensor<?x?x64xf32, #kiln.dims<[b, s]>> -> tensor<1xi64>
// CHECK-DAG: %[[D1:.+]] = kiln.dim %[[X]][1] : tensor<?x?x64xf32, #kiln.dims<[b, s]>> -> tensor<1xi64>
// CHECK: %[[P:.+]] = kiln.concat %[[D0]], %[[D1]], %[[C64]] {axis = 0 : i64} : (tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<3xi64>
// CHECK: %[[T:.+]] = kiln.concat %[[P]], %[[C7]] {axis = 0 : i64}
// CHECK: return %[[T]]
func.func @expand_shape(%x: tensor<?x?x64xf32, #kiln.dims<[b, s]>>) -> tensor<4xi64> {
  %s = kiln.shape %x : tensor<?x?x64xf32, #kiln.dims<[b, s]>> -> tensor<3xi64>
  %c = kiln.constant dense<[7]> : tensor<1xi64>
  %t = kiln.concat %s, %c {axis = 0 : i64} : (tensor<3xi64>, tensor<1xi64>) -> tensor<4xi64>
  return %t : tensor<4xi64>
}

// -----

// The target shape(x) broadcast with [1, 1, 64] is exactly the result
// type: the shape operand goes, and with it the kiln.shape.
// CHECK-LABEL: func.func @drop_known_expand_shape
// CHECK-NOT: kiln.shape
// CHECK: %[[E:.+]] = kiln.expand %{{.+}} : (tensor<1x1x64xf32>) -> tensor<?x?x64xf32, #kiln.dims<[b, s]>>
// CHECK-NEXT: return %[[E]]
func.func @drop_known_expand_shape(%x: tensor<?x?x64xf32, #kiln.dims<[b, s]>>) -> tensor<?x?x64xf32, #kiln.dims<[b, s]>> {
  %s = kiln.shape %x : tensor<?x?x64xf32, #kiln.dims<[b, s]>> -> tensor<3xi64>
  %one = kiln.constant dense<1.0> : tensor<1x1x64xf32>
  %e = kiln.expand %one, %s : (tensor<1x1x64xf32>, tensor<3xi64>) -> tensor<?x?x64xf32, #kiln.dims<[b, s]>>
  return %e : tensor<?x?x64xf32, #kiln.dims<[b, s]>>
}

// -----

// CHECK-LABEL: func.func @expand_runtime_shape_kept
// CHECK-SAME: (%[[S:[a-z0-9]+]]: tensor<3xi64>)
// CHECK: %[[E:.+]] = kiln.expand %{{.+}}, %[[S]] : (tensor<1x1x64xf32>, tensor<3xi64>) -> tensor<?x?x64xf32>
// CHECK-NEXT: return %[[E]]
func.func @expand_runtime_shape_kept(%s: tensor<3xi64>) -> tensor<?x?x64xf32> {
  %one = kiln.constant dense<1.0> : tensor<1x1x64xf32>
  %e = kiln.expand %one, %s : (tensor<1x1x64xf32>, tensor<3xi64>) -> tensor<?x?x64xf32>
  return %e : tensor<?x?x64xf32>
}

// -----

// Without a shape operand, an expand to its input's own type is nothing.
// CHECK-LABEL: func.func @expand_identity
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x64xf32, #kiln.dims<[b]>>)
// CHECK-NEXT: return %[[X]]
func.func @expand_identity(%x: tensor<?x64xf32, #kiln.dims<[b]>>) -> tensor<?x64xf32, #kiln.dims<[b]>> {
  %e = kiln.expand %x : (tensor<?x64xf32, #kiln.dims<[b]>>) -> tensor<?x64xf32, #kiln.dims<[b]>>
  return %e : tensor<?x64xf32, #kiln.dims<[b]>>
}

// -----

// Broadcasting to a larger type is real work.
// CHECK-LABEL: func.func @expand_broadcast_kept
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<1x64xf32>)
// CHECK-NEXT: %[[E:.+]] = kiln.expand %[[X]] : (tensor<1x64xf32>) -> tensor<?x64xf32, #kiln.dims<[b]>>
// CHECK-NEXT: return %[[E]]
func.func @expand_broadcast_kept(%x: tensor<1x64xf32>) -> tensor<?x64xf32, #kiln.dims<[b]>> {
  %e = kiln.expand %x : (tensor<1x64xf32>) -> tensor<?x64xf32, #kiln.dims<[b]>>
  return %e : tensor<?x64xf32, #kiln.dims<[b]>>
}

// -----

// An Expand without shape operand whose result type equals its input's is
// the identity.
// CHECK-LABEL: func.func @expand_identity
// CHECK-NEXT: return %arg0
func.func @expand_identity(%x: tensor<?x64xf32, #kiln.dims<[s]>>) -> tensor<?x64xf32, #kiln.dims<[s]>> {
  %e = kiln.expand %x : (tensor<?x64xf32, #kiln.dims<[s]>>) -> tensor<?x64xf32, #kiln.dims<[s]>>
  return %e : tensor<?x64xf32, #kiln.dims<[s]>>
}

// -----

// Must not fold: a real broadcast.
// CHECK-LABEL: func.func @expand_broadcast_kept
// CHECK: kiln.expand
func.func @expand_broadcast_kept(%x: tensor<1x64xf32>) -> tensor<?x64xf32, #kiln.dims<[s]>> {
  %e = kiln.expand %x : (tensor<1x64xf32>) -> tensor<?x64xf32, #kiln.dims<[s]>>
  return %e : tensor<?x64xf32, #kiln.dims<[s]>>
}

// -----

// A head-size scale computed from a static dimension folds to a constant:
// 1 / sqrt(cast(16)) = 0.25.
// CHECK-LABEL: func.func @scale_from_static_dim
// CHECK: %[[C:.+]] = kiln.constant dense<2.500000e-01> : tensor<1xf32>
// CHECK-NEXT: return %[[C]]
func.func @scale_from_static_dim(%x: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<1xf32> {
  %s = kiln.shape %x : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> -> tensor<4xi64>
  %st = kiln.constant dense<3> : tensor<1xi64>
  %en = kiln.constant dense<4> : tensor<1xi64>
  %d = kiln.slice %s, %st, %en {axes = array<i64: 0>, steps = array<i64: 1>} : (tensor<4xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<1xi64>
  %f = kiln.cast %d : tensor<1xi64> -> tensor<1xf32>
  %r = kiln.sqrt %f : tensor<1xf32>
  %one = kiln.constant dense<1.0> : tensor<1xf32>
  %q = kiln.div %one, %r : (tensor<1xf32>, tensor<1xf32>) -> tensor<1xf32>
  return %q : tensor<1xf32>
}

// -----

// Must not fold: the sliced element is a dynamic dimension.
// CHECK-LABEL: func.func @slice_of_dynamic_dim_kept
// CHECK: kiln.sqrt
func.func @slice_of_dynamic_dim_kept(%x: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<1xf32> {
  %s = kiln.shape %x : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> -> tensor<4xi64>
  %st = kiln.constant dense<2> : tensor<1xi64>
  %en = kiln.constant dense<3> : tensor<1xi64>
  %d = kiln.slice %s, %st, %en {axes = array<i64: 0>, steps = array<i64: 1>} : (tensor<4xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<1xi64>
  %f = kiln.cast %d : tensor<1xi64> -> tensor<1xf32>
  %r = kiln.sqrt %f : tensor<1xf32>
  return %r : tensor<1xf32>
}

// -----

// Must not fold: float arithmetic on non-splat constants (weights) stays.
// CHECK-LABEL: func.func @non_splat_float_kept
// CHECK: kiln.mul
func.func @non_splat_float_kept() -> tensor<2xf32> {
  %a = kiln.constant dense<[1.0, 2.0]> : tensor<2xf32>
  %m = kiln.mul %a, %a : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  return %m : tensor<2xf32>
}
