# FeedDependencies.cmake - find every dependency; a missing one stops configure with the
# Debian package to install (tools/setup.sh installs them all).

function(feed_missing what package)
  message(FATAL_ERROR
    "feed_mpi: ${what} not found.\n"
    "  hint: on Debian/Ubuntu run 'apt-get install ${package}' (or ./tools/setup.sh, which "
    "installs everything); elsewhere see INSTALL.")
endfunction()

# --- MPI (Open MPI on Debian; any MPI-3 C library works) ---
find_package(MPI COMPONENTS C QUIET)
if(NOT MPI_C_FOUND)
  feed_missing("an MPI C library (mpicc)" "libopenmpi-dev openmpi-bin")
endif()

# --- oneDNN 2.x: find_library + header, not find_package(dnnl CONFIG): Debian's config
# package pulls in OpenCL (ocl-icd-opencl-dev) because the library was built with it. ---
find_path(DNNL_INCLUDE_DIR dnnl.h)
find_library(DNNL_LIBRARY NAMES dnnl)
if(NOT DNNL_INCLUDE_DIR OR NOT DNNL_LIBRARY)
  feed_missing("oneDNN (dnnl.h / libdnnl)" "libdnnl-dev")
endif()
find_file(DNNL_VERSION_HEADER NAMES oneapi/dnnl/dnnl_version.h dnnl_version.h HINTS ${DNNL_INCLUDE_DIR})
file(STRINGS "${DNNL_VERSION_HEADER}" _dnnl_major REGEX "#define DNNL_VERSION_MAJOR ")
string(REGEX MATCH "[0-9]+" DNNL_VERSION_MAJOR "${_dnnl_major}")
if(NOT DNNL_VERSION_MAJOR EQUAL 2)
  message(FATAL_ERROR "feed_mpi needs oneDNN 2.x (the *_desc_init C API); found major version "
                      "${DNNL_VERSION_MAJOR} in ${DNNL_INCLUDE_DIR}.\n  hint: install libdnnl-dev "
                      "from Debian bookworm or build oneDNN v2.6 (see INSTALL).")
endif()

# --- OpenBLAS with CBLAS ---
find_path(CBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas x86_64-linux-gnu aarch64-linux-gnu)
find_library(OPENBLAS_LIBRARY NAMES openblas)
if(NOT CBLAS_INCLUDE_DIR OR NOT OPENBLAS_LIBRARY)
  feed_missing("OpenBLAS (cblas.h / libopenblas)" "libopenblas-dev")
endif()

# --- HDF5, serial C library ---
set(HDF5_PREFER_PARALLEL FALSE)
find_package(HDF5 COMPONENTS C QUIET)
if(NOT HDF5_FOUND)
  feed_missing("the HDF5 C library (serial)" "libhdf5-dev")
endif()

# --- libinih (INI parser) ---
find_path(INIH_INCLUDE_DIR ini.h)
find_library(INIH_LIBRARY NAMES inih)
if(NOT INIH_INCLUDE_DIR OR NOT INIH_LIBRARY)
  feed_missing("libinih (ini.h / libinih)" "libinih-dev")
endif()

# --- zlib, for gzip-compressed IDX files (a dependency of HDF5 anyway) ---
find_package(ZLIB QUIET)
if(NOT ZLIB_FOUND)
  feed_missing("zlib" "zlib1g-dev")
endif()

# --- libjpeg-turbo and libpng, for `feed_convert imagefolder` ---
find_package(JPEG QUIET)
if(NOT JPEG_FOUND)
  feed_missing("libjpeg (libjpeg-turbo)" "libjpeg-dev")
endif()
find_package(PNG QUIET)
if(NOT PNG_FOUND)
  feed_missing("libpng" "libpng-dev")
endif()

find_package(Threads REQUIRED)
find_package(OpenMP COMPONENTS C QUIET)

message(STATUS "feed_mpi: MPI ${MPI_C_VERSION} (${MPI_C_COMPILER}), oneDNN ${DNNL_LIBRARY}, "
               "OpenBLAS ${OPENBLAS_LIBRARY}, HDF5 ${HDF5_VERSION}, inih ${INIH_LIBRARY}")
