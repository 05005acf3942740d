# Find oneDNN >= 3: the project-local prefix that scripts/install-deps.sh unpacks from Intel's
# PyPI wheels (third_party/onednn) first, else a system package.
set(VD_ONEDNN_PREFIX "${CMAKE_SOURCE_DIR}/third_party/onednn" CACHE PATH "Project-local oneDNN prefix")
find_package(dnnl 3 CONFIG QUIET PATHS "${VD_ONEDNN_PREFIX}" NO_DEFAULT_PATH)
if(dnnl_FOUND)
  set(VD_ONEDNN_FROM "${VD_ONEDNN_PREFIX} (project-local)")
  # The build tree's RPATH already names the prefix; installed binaries need it too, since
  # libdnnl.so.3 stays there, outside the loader's search path (and inside the source tree,
  # which CMAKE_INSTALL_RPATH_USE_LINK_PATH skips).
  list(APPEND CMAKE_INSTALL_RPATH "${VD_ONEDNN_PREFIX}/lib")
else()
  find_package(dnnl 3 CONFIG QUIET)
  set(VD_ONEDNN_FROM "${dnnl_DIR} (system)")
endif()
if(dnnl_FOUND)
  set(VD_HAVE_ONEDNN ON)
  message(STATUS "oneDNN ${dnnl_VERSION} from ${VD_ONEDNN_FROM}")
else()
  set(VD_HAVE_ONEDNN OFF)
  message(WARNING "oneDNN >= 3 not found: run scripts/install-deps.sh. Building without the fast CPU backend.")
endif()
