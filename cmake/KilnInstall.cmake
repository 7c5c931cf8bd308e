# `cmake --install`: what a service needs to link kiln, and the tools.
#
#   include/kiln/     kiln.h, kiln.hpp, model_abi.h
#   lib/              libkiln.so (kiln::kiln), libkiln_runtime.a (kiln::kiln_static)
#   lib/cmake/kiln/   kilnConfig.cmake: find_package(kiln)
#   lib/pkgconfig/    kiln.pc: pkg-config --cflags --libs kiln (libkiln.so)
#   bin/              kiln, and kilnc when the compiler is built
#
# examples/c-service builds against the result both ways;
# test/examples/check_c_service.py checks it.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(KILN_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/kiln)

set_target_properties(kiln_shared PROPERTIES EXPORT_NAME kiln)
set_target_properties(kiln_runtime PROPERTIES EXPORT_NAME kiln_static)
install(TARGETS kiln_shared kiln_runtime EXPORT kilnTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/runtime/include/kiln
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT kilnTargets NAMESPACE kiln:: DESTINATION ${KILN_INSTALL_CMAKEDIR})

# The static library's private PCRE2 dependency is exported as the
# imported target it was linked with: kilnConfig.cmake recreates it.
get_target_property(KILN_RUNTIME_LIBS kiln_runtime LINK_LIBRARIES)
if("PkgConfig::KILN_PCRE2" IN_LIST KILN_RUNTIME_LIBS)
  set(KILN_PCRE2_FROM_PKGCONFIG ON)
else()
  set(KILN_PCRE2_FROM_PKGCONFIG OFF)
endif()
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/kilnConfig.cmake.in
  ${PROJECT_BINARY_DIR}/kilnConfig.cmake
  INSTALL_DESTINATION ${KILN_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/kilnConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/kilnConfig.cmake
  ${PROJECT_BINARY_DIR}/kilnConfigVersion.cmake
  DESTINATION ${KILN_INSTALL_CMAKEDIR})

# kiln.pc finds its prefix from where it lies (${pcfiledir}), so the
# install tree can be moved, or installed with `cmake --install --prefix`.
# (An absolute LIBDIR or INCLUDEDIR is written as it is.)
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(KILN_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH KILN_PC_UP "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
  string(REGEX REPLACE "/$" "" KILN_PC_UP "${KILN_PC_UP}")
  set(KILN_PC_PREFIX "\${pcfiledir}/${KILN_PC_UP}")
endif()
foreach(dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${dir}}")
    set(KILN_PC_${dir} "${CMAKE_INSTALL_${dir}}")
  else()
    set(KILN_PC_${dir} "\${prefix}/${CMAKE_INSTALL_${dir}}")
  endif()
endforeach()
configure_file(${PROJECT_SOURCE_DIR}/cmake/kiln.pc.in
  ${PROJECT_BINARY_DIR}/kiln.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/kiln.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

install(TARGETS kiln RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
if(KILN_BUILD_COMPILER)
  # Keep the run path to libLLVM (/usr/lib/llvm-22/lib) that LLVM's
  # install rpath ($ORIGIN/../lib) would drop.
  set_target_properties(kilnc PROPERTIES INSTALL_RPATH_USE_LINK_PATH ON)
  install(TARGETS kilnc RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
