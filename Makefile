# The friendly entry: `make` builds, `make test` runs the suite, `make demo` the main job.
# Everything goes through CMake (build/); scripts/install-deps.sh installs what is missing.
BUILD ?= build
JOBS ?= 2
CMAKE_FLAGS ?=
GEN := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")

.PHONY: all deps build test asan cuda mpi fuzz demo bench info clean

all: build

deps:
	bash scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(GEN) -DCMAKE_BUILD_TYPE=Release -DVD_WERROR=ON $(CMAKE_FLAGS)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: deps build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

# Unit tests under AddressSanitizer + UndefinedBehaviorSanitizer.
asan: deps
	cmake -S . -B build-asan $(GEN) -DCMAKE_BUILD_TYPE=Debug -DVD_SANITIZE=ON -DVD_WERROR=ON -DVD_BENCH=OFF
	cmake --build build-asan -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir build-asan --output-on-failure -j $(JOBS) -R "^test_"

# The CUDA backend (needs the CUDA toolkit with cuDNN, /usr/local/cuda; no GPU): build it with
# warnings as errors and run its tests (NCCL's too), which skip (77) where no GPU exists; the GPU's own
# run is scripts/gpu-check.sh.
CUDA_BUILD ?= build-cuda
cuda: deps
	cmake -S . -B $(CUDA_BUILD) $(GEN) -DCMAKE_BUILD_TYPE=Release -DVD_WERROR=ON -DVD_CUDA=ON
	cmake --build $(CUDA_BUILD) -j $(JOBS)
	ctest --test-dir $(CUDA_BUILD) --output-on-failure -j $(JOBS) -R "cuda|nccl|^test_philox$$|^layering$$"

# Data parallelism (VD_MPI=ON, Debian's OpenMPI): build it with warnings as errors and run the
# tests that start ranks with mpirun on this machine (ctest label mpi: 2 ranks of 1 thread).
MPI_BUILD ?= build-mpi
mpi: deps
	cmake -S . -B $(MPI_BUILD) $(GEN) -DCMAKE_BUILD_TYPE=Release -DVD_WERROR=ON -DVD_MPI=ON
	cmake --build $(MPI_BUILD) -j $(JOBS)
	ctest --test-dir $(MPI_BUILD) --output-on-failure -L mpi

# libFuzzer targets for a bounded time: FUZZ_SECONDS in all, shared among the targets.
FUZZ_SECONDS ?= 60
fuzz: deps
	bash fuzz/run.sh $(FUZZ_SECONDS)

demo: deps build
	bash scripts/demo.sh $(BUILD)

bench: deps build
	bash bench/run_all.sh $(BUILD)

clean:
	rm -rf $(BUILD) build-asan build-fuzz $(CUDA_BUILD) $(MPI_BUILD)
