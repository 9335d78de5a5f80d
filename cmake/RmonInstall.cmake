# `cmake --install`: executables, libraries and public headers go to the
# GNUInstallDirs places (each CMakeLists.txt installs its own targets); this
# file writes the CMake package, so another project can
#   find_package(runner_monitor 0.1 REQUIRED)
#   target_link_libraries(app PRIVATE rmon::common)
# Targets join the package with install(TARGETS x EXPORT runner_monitor_targets).
# An exported target's dependencies must be exported too, or be imported
# targets that cmake/runner_monitorConfig.cmake.in finds (find_dependency);
# scripts/check-install.sh builds a consumer project against an install.

include(CMakePackageConfigHelpers)

set(RMON_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/runner_monitor)

# rmon::msgpack is linked privately by rmon::common; a static library's
# private dependencies are part of its exported link interface.
install(TARGETS rmon_msgpack EXPORT runner_monitor_targets)

install(EXPORT runner_monitor_targets
        NAMESPACE rmon::
        FILE runner_monitorTargets.cmake
        DESTINATION ${RMON_INSTALL_CMAKEDIR})

configure_package_config_file(cmake/runner_monitorConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/runner_monitorConfig.cmake
                              INSTALL_DESTINATION ${RMON_INSTALL_CMAKEDIR})
# 0.x: a minor version may break the API.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/runner_monitorConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/runner_monitorConfig.cmake
              ${PROJECT_BINARY_DIR}/runner_monitorConfigVersion.cmake
        DESTINATION ${RMON_INSTALL_CMAKEDIR})
install(FILES LICENSE TYPE DOC)
