//go:build tools

// Package tools pins what build.sh builds: Ollama itself, and malgo, whose
// module carries the miniaudio.h header that Ollama's module zip lacks (Go
// module zips drop vendor/ subdirectories, where Ollama keeps its copy).
package tools

import (
	_ "github.com/gen2brain/malgo"
	_ "github.com/ollama/ollama"
)
