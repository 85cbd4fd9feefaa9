// Command scimgate is an identity sidecar and auth proxy that speaks SCIM. It
// also administers orgs, users and API tokens from the command line; run
// "scimgate --help" for the commands.
package main

import (
	"context"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		printError(os.Stderr, err)
		os.Exit(exitCode(err))
	}
}
