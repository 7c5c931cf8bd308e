# CUDA is optional: the compiler emits PTX through MLIR's NVVM path and the
# runtime loads the driver at run time, so nothing here requires a GPU. When
# nvcc is absent, the CUDA targets are skipped with a message, never an error.
set(KILN_HAVE_CUDA OFF)
if(KILN_ENABLE_CUDA)
  include(CheckLanguage)
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(KILN_HAVE_CUDA ON)
  else()
    message(STATUS "kiln: nvcc not found; CUDA parts are skipped")
  endif()
endif()
