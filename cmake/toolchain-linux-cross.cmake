# Cross build for a Debian multiarch target: the cross compiler of
# crossbuild-essential-ARCH and the target's -dev packages (libssl-dev:ARCH,
# ...) installed beside the build machine's own. Give the triplet:
#   cmake -DUSBD_CROSS_TRIPLET=aarch64-linux-gnu -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-linux-cross.cmake
# (scripts/build-cross.sh does this for arm64 and armhf). Tests run under
# qemu-user (CMAKE_CROSSCOMPILING_EMULATOR): ctest in the build tree works.
if(NOT USBD_CROSS_TRIPLET)
  set(USBD_CROSS_TRIPLET "$ENV{USBD_CROSS_TRIPLET}")
endif()
if(NOT USBD_CROSS_TRIPLET)
  message(FATAL_ERROR "set USBD_CROSS_TRIPLET (aarch64-linux-gnu or arm-linux-gnueabihf)")
endif()
# try_compile() projects re-read this file: pass the triplet on to them.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES USBD_CROSS_TRIPLET)
set(ENV{USBD_CROSS_TRIPLET} "${USBD_CROSS_TRIPLET}")

set(CMAKE_SYSTEM_NAME Linux)
if(USBD_CROSS_TRIPLET MATCHES "^aarch64")
  set(CMAKE_SYSTEM_PROCESSOR aarch64)
  set(usbd_qemu qemu-aarch64-static)
elseif(USBD_CROSS_TRIPLET MATCHES "^arm")
  set(CMAKE_SYSTEM_PROCESSOR armv7l)
  set(usbd_qemu qemu-arm-static)
else()
  message(FATAL_ERROR "USBD_CROSS_TRIPLET=${USBD_CROSS_TRIPLET}: not a target this file knows")
endif()
set(CMAKE_C_COMPILER ${USBD_CROSS_TRIPLET}-gcc)
# Multiarch: the target's libraries are in /usr/lib/TRIPLET, its
# arch-specific headers in /usr/include/TRIPLET (the cross gcc looks there).
set(CMAKE_LIBRARY_ARCHITECTURE ${USBD_CROSS_TRIPLET})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
# pkg-config must see the target's .pc files only, never the build machine's.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/${USBD_CROSS_TRIPLET}/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
# The target's dynamic loader and libraries are installed in / by multiarch
# (/lib/ld-linux-aarch64.so.1, /usr/lib/TRIPLET), so -L / is the sysroot.
find_program(USBD_QEMU ${usbd_qemu})
if(USBD_QEMU)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${USBD_QEMU} -L /)
endif()
