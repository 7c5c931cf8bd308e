# Thin wrappers over the MLIR CMake boilerplate so that each component's
# CMakeLists.txt stays a few lines long.

# add_kiln_library(name SRCS... [DEPENDS ...] [LINK_LIBS ...])
function(add_kiln_library name)
  add_mlir_library(${name} ${ARGN} DISABLE_INSTALL)
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
endfunction()

# add_kiln_tool(name SRCS... [LINK_LIBS ...]): an executable in build/bin.
function(add_kiln_tool name)
  cmake_parse_arguments(ARG "" "" "LINK_LIBS" ${ARGN})
  add_llvm_executable(${name} ${ARG_UNPARSED_ARGUMENTS})
  llvm_update_compile_flags(${name})
  target_link_libraries(${name} PRIVATE ${ARG_LINK_LIBS})
  mlir_check_all_link_libraries(${name})
endfunction()
