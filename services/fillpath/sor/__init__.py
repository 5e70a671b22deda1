"""Smart order routing: venue quality and the allocation of each slice across lit venues and
dark pools, served from numba kernels. Its contract is protos/fillpath/v1/routing.proto; the
router is built by the SOR issue."""
