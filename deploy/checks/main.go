// Command cmhl-deploy-check renders and validates the deploy/ files without a container engine
// or a cluster, with the same libraries Docker Compose and kubectl use, so the tests under
// tests/deploy/ check what a real `docker compose` or `kubectl apply -k` would see.
//
//	cmhl-deploy-check compose FILE    validate against the Compose Specification, print the model as JSON
//	cmhl-deploy-check kustomize DIR   render a kustomization, print the objects as YAML
//	cmhl-deploy-check dockerfile FILE parse and lint with BuildKit's front end, print the stages
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

func main() {
	if len(os.Args) != 3 {
		fail(fmt.Errorf("usage: cmhl-deploy-check compose FILE | kustomize DIR | dockerfile FILE"))
	}
	var err error
	switch os.Args[1] {
	case "compose":
		err = compose(os.Args[2])
	case "kustomize":
		err = kustomize(os.Args[2])
	case "dockerfile":
		err = dockerfile(os.Args[2])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

// compose loads the file the way `docker compose config` does: schema validation against the
// Compose Specification, interpolation, and the model's own consistency checks (depends_on
// targets, networks, volumes). Every profile is enabled so optional services are checked too.
func compose(file string) error {
	abs, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	options, err := cli.NewProjectOptions(
		[]string{abs},
		cli.WithWorkingDirectory(filepath.Dir(abs)),
		cli.WithName("cmhl"),
		cli.WithProfiles([]string{"*"}),
		cli.WithResolvedPaths(false),
	)
	if err != nil {
		return err
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		return err
	}
	out, err := project.MarshalJSON()
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(out)
	return err
}

// kustomize renders DIR as `kubectl apply -k DIR` would, with load restrictions on, so an overlay
// cannot reach files outside deploy/k8s.
func kustomize(dir string) error {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resources, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return err
	}
	out, err := resources.AsYaml()
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(out)
	return err
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "cmhl-deploy-check:", err)
	os.Exit(1)
}
