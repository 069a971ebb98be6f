// Command fields prints, for the Go package in a directory, what the
// `generated.proto` beside it cannot say about each protobuf field of its
// structs: the JSON name, `omitempty`, `inline`, and whether the Go field is a
// pointer or a byte slice — what decides whether Go's marshallers write a
// field. One line per field, in Go struct order:
//
//	Message <TAB> number <TAB> json name <TAB> flags
//
// flags is a comma-separated subset of omitempty, omitzero, inline, pointer,
// bytes, or "-". scripts/refresh-schema.sh writes it to proto/.../fields.tsv.
package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: fields PACKAGE_DIR")
		os.Exit(2)
	}
	files, err := filepath.Glob(filepath.Join(os.Args[1], "*.go"))
	if err != nil {
		panic(err)
	}
	sort.Strings(files)
	fset := token.NewFileSet()
	var out strings.Builder
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, decl := range file.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.TYPE {
				continue
			}
			for _, spec := range gen.Specs {
				ts := spec.(*ast.TypeSpec)
				if st, ok := ts.Type.(*ast.StructType); ok {
					writeStruct(&out, ts.Name.Name, st)
				}
			}
		}
	}
	os.Stdout.WriteString(out.String())
}

func writeStruct(out *strings.Builder, message string, st *ast.StructType) {
	for _, field := range st.Fields.List {
		if field.Tag == nil {
			continue
		}
		tag := reflect.StructTag(strings.Trim(field.Tag.Value, "`"))
		proto, ok := tag.Lookup("protobuf")
		if !ok || proto == "-" {
			continue
		}
		// "bytes,1,opt,name=foo,casttype=...": the number is the second part.
		parts := strings.Split(proto, ",")
		if len(parts) < 2 {
			fmt.Fprintf(os.Stderr, "%s: malformed protobuf tag %q\n", message, proto)
			os.Exit(1)
		}
		jsonName, flags := jsonTag(tag.Get("json"), field)
		switch t := field.Type.(type) {
		case *ast.StarExpr:
			flags = append(flags, "pointer")
		case *ast.ArrayType:
			if id, ok := t.Elt.(*ast.Ident); ok && id.Name == "byte" && t.Len == nil {
				flags = append(flags, "bytes")
			}
		}
		if len(flags) == 0 {
			flags = []string{"-"}
		}
		fmt.Fprintf(out, "%s\t%s\t%s\t%s\n", message, parts[1], jsonName, strings.Join(flags, ","))
	}
}

// jsonTag gives the JSON name and the omitempty/inline flags of a field.
func jsonTag(json string, field *ast.Field) (string, []string) {
	parts := strings.Split(json, ",")
	name := parts[0]
	if name == "" && len(field.Names) > 0 {
		name = field.Names[0].Name
	}
	var flags []string
	for _, option := range parts[1:] {
		if option == "omitempty" || option == "omitzero" {
			flags = append(flags, option)
		}
	}
	// encoding/json flattens an embedded struct without a JSON name; the
	// `inline` option is only a convention of the API types.
	if name == "" {
		return "-", append(flags, "inline")
	}
	return name, flags
}
