// Command decodegen writes the webhook's generated decoders,
// zz_generated_fastdecode.go, in the current directory (go generate runs
// it in webhook/).
package main

import (
	"fmt"
	"os"

	"github.com/fitgate/fitgate/webhook/internal/decodegen/gen"
)

func main() {
	src, err := gen.Generate()
	if err != nil {
		fmt.Fprintln(os.Stderr, "decodegen:", err)
		os.Exit(1)
	}
	if err := os.WriteFile("zz_generated_fastdecode.go", src, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "decodegen:", err)
		os.Exit(1)
	}
}
