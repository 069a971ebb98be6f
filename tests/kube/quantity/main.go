// Command quantity prints what resource.ParseQuantity and Quantity.String
// make of each line of stdin: "ok<TAB>canonical" or "err". With -json each
// line is a JSON value, and what it prints is what a client reads back after
// writing that value: decoded from JSON, through protobuf, encoded as JSON.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

func main() {
	fromJSON := flag.Bool("json", false, "read JSON values")
	flag.Parse()
	in := bufio.NewReader(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for {
		line, err := in.ReadString('\n')
		if err == io.EOF && line == "" {
			return
		}
		if err != nil && err != io.EOF {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		line = strings.TrimSuffix(line, "\n")
		var result string
		var perr error
		if *fromJSON {
			result, perr = roundTrip(line)
		} else {
			var q resource.Quantity
			q, perr = resource.ParseQuantity(line)
			result = q.String()
		}
		if perr != nil {
			fmt.Fprintln(out, "err")
		} else {
			fmt.Fprintf(out, "ok\t%s\n", result)
		}
	}
}

func roundTrip(value string) (string, error) {
	var written resource.Quantity
	if err := json.Unmarshal([]byte(value), &written); err != nil {
		return "", err
	}
	stored, err := written.Marshal()
	if err != nil {
		return "", err
	}
	var read resource.Quantity
	if err := read.Unmarshal(stored); err != nil {
		return "", err
	}
	served, err := json.Marshal(read)
	if err != nil {
		return "", err
	}
	var text string
	err = json.Unmarshal(served, &text)
	return text, err
}
