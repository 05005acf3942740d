# The CUDA backend: src/backend/cuda/*.cu compiled by nvcc into libvdvae for sm_80 and sm_90
# with PTX for newer GPUs, the CUDA runtime linked statically and cuDNN 9 dynamically (so a
# build made on a machine without a GPU runs where the GPU's own cuDNN is found). It builds on
# a machine without a GPU; `--backend cuda` then exits 2 saying so.
if(NOT DEFINED CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
  set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
endif()
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 80-real 90-real 90-virtual)
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)
set(CMAKE_CUDA_STANDARD 20)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)

find_path(VD_CUDNN_INCLUDE_DIR cudnn.h HINTS ${CUDAToolkit_INCLUDE_DIRS} PATH_SUFFIXES include)
find_library(VD_CUDNN_LIBRARY cudnn HINTS ${CUDAToolkit_LIBRARY_DIR} PATH_SUFFIXES lib64 lib)
if(NOT VD_CUDNN_INCLUDE_DIR OR NOT VD_CUDNN_LIBRARY)
  message(FATAL_ERROR "VD_CUDA=ON needs cuDNN 9 (cudnn.h and libcudnn) beside the CUDA toolkit "
    "${CUDAToolkit_LIBRARY_DIR}; set VD_CUDNN_INCLUDE_DIR and VD_CUDNN_LIBRARY")
endif()

file(GLOB VD_CUDA_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/backend/cuda/*.cu)
target_sources(vdvae PRIVATE ${VD_CUDA_SOURCES})
# vdvae was created before CUDA was enabled, so it did not pick up the default above.
set_target_properties(vdvae PROPERTIES CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}")
target_include_directories(vdvae PRIVATE ${VD_CUDNN_INCLUDE_DIR})
target_link_libraries(vdvae PUBLIC CUDA::cudart_static ${VD_CUDNN_LIBRARY})
target_compile_definitions(vdvae PUBLIC VD_HAVE_CUDA=1)
# --fmad=false: no fused multiply-adds, so the shared math (Philox normals above all) gives
# the CPU's bits. Warnings are errors, as for the C code.
target_compile_options(vdvae PRIVATE "$<$<COMPILE_LANGUAGE:CUDA>:--fmad=false>"
  "$<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>")
if(VD_WERROR)
  target_compile_options(vdvae PRIVATE "$<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings>"
    "$<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Werror>")
endif()

# The NCCL communicator (src/dist/comm_nccl.c: gradient sums of GPU memory between ranks), where
# the toolkit (or VD_NCCL_INCLUDE_DIR / VD_NCCL_LIBRARY) has NCCL; linked dynamically as cuDNN.
if(VD_NCCL)
  find_path(VD_NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} PATH_SUFFIXES include)
  find_library(VD_NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_DIR}/../lib
    PATH_SUFFIXES lib64 lib)
  if(VD_NCCL_INCLUDE_DIR AND VD_NCCL_LIBRARY)
    target_sources(vdvae PRIVATE ${CMAKE_SOURCE_DIR}/src/dist/comm_nccl.c)
    set_source_files_properties(${CMAKE_SOURCE_DIR}/src/dist/comm_nccl.c PROPERTIES
      INCLUDE_DIRECTORIES "${VD_NCCL_INCLUDE_DIR};${CUDAToolkit_INCLUDE_DIRS}")
    target_link_libraries(vdvae PUBLIC ${VD_NCCL_LIBRARY})
    target_compile_definitions(vdvae PRIVATE VD_HAVE_NCCL=1)
    message(STATUS "NCCL: ${VD_NCCL_LIBRARY}")
  else()
    message(WARNING "VD_NCCL: no nccl.h / libnccl beside the CUDA toolkit: building without the NCCL "
      "communicator (several ranks on GPUs then sum gradients through host memory over MPI); set "
      "VD_NCCL_INCLUDE_DIR and VD_NCCL_LIBRARY, or -DVD_NCCL=OFF to silence this")
  endif()
endif()
