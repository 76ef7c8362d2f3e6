# The Debian package: `cpack -G DEB` in a build directory (packaging/build-deb.sh).
# Installs regfsd and regfs in /usr/bin, the systemd unit, /etc/default/regfsd
# (a conffile), the man pages regfsd(8) and regfs(1), and the docs and client
# examples under /usr/share/doc/regfs.
include(GNUInstallDirs)

install(FILES ${CMAKE_CURRENT_LIST_DIR}/regfsd.service DESTINATION lib/systemd/system)
install(FILES ${CMAKE_CURRENT_LIST_DIR}/regfsd.default DESTINATION /etc/default RENAME regfsd)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/docs/DESIGN.md
              ${PROJECT_SOURCE_DIR}/docs/INTERFACES.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/examples/clients/
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples/clients
        USE_SOURCE_PERMISSIONS
        # What running the examples leaves in the tree is not part of them.
        PATTERN __pycache__ EXCLUDE PATTERN node_modules EXCLUDE PATTERN "*.class" EXCLUDE)

# The reference pages, regfsd(8) and regfs(1): written in roff, stamped with the
# project's version and compressed as Debian installs man pages.
set(regfs_man_pages)
foreach(page regfsd.8 regfs.1)
  string(REGEX REPLACE ".*\\." "" section ${page})
  configure_file(${CMAKE_CURRENT_LIST_DIR}/man/${page} ${PROJECT_BINARY_DIR}/man/${page} @ONLY)
  add_custom_command(OUTPUT ${PROJECT_BINARY_DIR}/man/${page}.gz
    COMMAND gzip -9nc ${PROJECT_BINARY_DIR}/man/${page} > ${PROJECT_BINARY_DIR}/man/${page}.gz
    DEPENDS ${PROJECT_BINARY_DIR}/man/${page} VERBATIM)
  list(APPEND regfs_man_pages ${PROJECT_BINARY_DIR}/man/${page}.gz)
  install(FILES ${PROJECT_BINARY_DIR}/man/${page}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()
add_custom_target(man_pages ALL DEPENDS ${regfs_man_pages})

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME regfs)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_CONTACT "regfs maintainers <regfs@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "service registry as a file system: cat /registry/<service> prints a checked host:port")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # libfuse3-3, libsodium23, libstdc++6, ... from the binaries
set(CPACK_DEBIAN_PACKAGE_DEPENDS "fuse3")  # fusermount3, for unprivileged unmounts
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_CURRENT_LIST_DIR}/debian/postinst ${CMAKE_CURRENT_LIST_DIR}/debian/postrm
    ${CMAKE_CURRENT_LIST_DIR}/debian/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
