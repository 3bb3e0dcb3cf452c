package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

type stage struct {
	Name     string     `json:"name"`
	Base     string     `json:"base"`
	Commands [][]string `json:"commands"`
}

// dockerfile parses FILE with BuildKit's own front end (the parser `docker build` uses), checks
// every instruction and its flags, runs BuildKit's lint rules (an error on any warning), and
// prints the stages with each instruction as [keyword, original line].
func dockerfile(file string) error {
	source, err := os.Open(file)
	if err != nil {
		return err
	}
	defer source.Close()
	ast, err := parser.Parse(source)
	if err != nil {
		return err
	}
	var warnings []string
	lint := linter.New(&linter.Config{Warn: func(rule, description, url, message string, _ []parser.Range) {
		warnings = append(warnings, fmt.Sprintf("%s: %s", rule, message))
	}})
	stages, metaArgs, err := instructions.Parse(ast.AST, lint)
	if err != nil {
		return err
	}
	for _, warning := range ast.Warnings {
		warnings = append(warnings, warning.Short)
	}
	if len(warnings) > 0 {
		return fmt.Errorf("lint: %s", strings.Join(warnings, "; "))
	}
	out := struct {
		Args   []string `json:"args"`
		Stages []stage  `json:"stages"`
	}{}
	for _, arg := range metaArgs {
		for _, kv := range arg.Args {
			out.Args = append(out.Args, kv.Key)
		}
	}
	for _, s := range stages {
		st := stage{Name: s.Name, Base: s.BaseName}
		for _, command := range s.Commands {
			st.Commands = append(st.Commands, []string{command.Name(), fmt.Sprint(command)})
		}
		out.Stages = append(out.Stages, st)
	}
	encoded, err := json.Marshal(out)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(encoded)
	return err
}
