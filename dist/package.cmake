# Debian packages with CPack's DEB generator (scripts/package.sh runs it), for
# the build's target architecture (amd64, or arm64 and armhf in a cross build):
#   usbd-objstore   the daemon, the systemd unit, the example config, README;
#                   maintainer scripts that reload systemd (dist/debian/)
#   libusbd-dev     libusbd.a and usbd.h, to write a block device of your own
# Configure with -DCMAKE_INSTALL_PREFIX=/usr: the unit names the binary by its
# installed path, and the config goes to /etc/usbd-objstore.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME usbd-objstore)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "usbd-objstore developers")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL daemon dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT) # NAME_VERSION_ARCH.deb
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON) # maintainer scripts 0755
set(CPACK_STRIP_FILES ON) # with the toolchain's strip in a cross build

# The target's Debian architecture (CPack would ask dpkg, which names the
# build machine's).
if(CMAKE_LIBRARY_ARCHITECTURE MATCHES "^aarch64")
  set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE arm64)
elseif(CMAKE_LIBRARY_ARCHITECTURE MATCHES "^arm-linux-gnueabihf")
  set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE armhf)
elseif(CMAKE_LIBRARY_ARCHITECTURE MATCHES "^x86_64")
  set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE amd64)
endif()

set(CPACK_DEBIAN_DAEMON_PACKAGE_NAME usbd-objstore)
set(CPACK_DEBIAN_DAEMON_PACKAGE_SECTION admin)
# Debian's names of the libraries the binary links (the test checks each
# NEEDED entry against them), at the versions the build requires, and
# procps for the unit's ExecReload (/bin/kill).
set(CPACK_DEBIAN_DAEMON_PACKAGE_DEPENDS
    "libc6 (>= 2.34), libcurl4 (>= 7.85), libexpat1 (>= 2.4), liblmdb0, libssl3 (>= 3.0), libzstd1, procps")
# modprobe (nbd, libcomposite, usb_f_mass_storage) comes from kmod.
set(CPACK_DEBIAN_DAEMON_PACKAGE_RECOMMENDS "kmod")
set(CPACK_COMPONENT_DAEMON_DESCRIPTION
   "a USB drive whose bytes live in an object store (S3, Ceph RGW, MinIO)
usbd-objstore serves a block device over NBD whose chunks are compressed,
encrypted and authenticated into an S3 bucket or a local directory, and on a
board with a USB device port (Raspberry Pi Zero 2 W, 4) shows it to a TV, PC
or phone as a USB mass-storage drive. Start a volume with the systemd unit:
systemctl enable --now usbd-objstore@NAME, configured in
/etc/usbd-objstore/NAME.conf (see example.conf).")
set(CPACK_DEBIAN_DAEMON_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/dist/debian/postinst
    ${PROJECT_SOURCE_DIR}/dist/debian/prerm
    ${PROJECT_SOURCE_DIR}/dist/debian/postrm
    ${PROJECT_SOURCE_DIR}/dist/debian/conffiles)

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libusbd-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_COMPONENT_DEV_DESCRIPTION
   "libusbd: write a block device served over NBD (static library)
libusbd is usbd-objstore's NBD server as a library: implement struct
usbd_dev_ops (read, write, and optionally flush, trim, write_zeroes, cache,
block_status) and call usbd_serve(). One header, usbd.h, documents the whole
contract; link with -lusbd -lpthread.")
include(CPack)
