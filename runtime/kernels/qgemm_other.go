//go:build !amd64 || purego

package kernels

// qImpls lists the int8 kernel implementations this build can run.
var qImpls = []*qKernels{qGeneric}

// qDefault is the implementation the exported functions use.
var qDefault = qGeneric
