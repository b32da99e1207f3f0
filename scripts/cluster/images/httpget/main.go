// httpget URL: prints the body of one GET and exits 0 on a 2xx answer, 1 otherwise. It stands in for
// wget in localhost/busybox:1 because Debian's static busybox wget crashes in glibc's static NSS; this
// one uses Go's own resolver, so /etc/resolv.conf's search path and ndots apply as in any pod.
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	timeout := flag.Duration("timeout", 5*time.Second, "give up after this long")
	flag.Usage = func() { fmt.Fprintln(os.Stderr, "usage: httpget [-timeout 5s] URL") }
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	client := http.Client{Timeout: *timeout}
	response, err := client.Get(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "httpget:", err)
		os.Exit(1)
	}
	defer response.Body.Close()
	if _, err := io.Copy(os.Stdout, response.Body); err != nil {
		fmt.Fprintln(os.Stderr, "httpget:", err)
		os.Exit(1)
	}
	if response.StatusCode < 200 || response.StatusCode > 299 {
		fmt.Fprintln(os.Stderr, "httpget:", response.Status)
		os.Exit(1)
	}
}
