// Command testbox is the one program in the image the real test node's smoke tests run as containers.
//
// Why: the tests must prove that real containers run (logs, exec, Service traffic, DNS, volumes), but no image can
// be pulled from a registry here, and shells or busybox would mean building a distribution image. One static Go
// binary with a few subcommands is enough, and builds in seconds. Its name lookups use Go's own resolver, which
// reads the /etc/resolv.conf the kubelet writes, so a lookup goes through the cluster DNS exactly like any pod's.
//
//	testbox sleep                      run until SIGTERM/SIGINT
//	testbox echo <words...>            print the words, exit 0
//	testbox serve <port>               HTTP server answering "hello from <hostname>"
//	testbox get <url>                  HTTP GET, print the body; exit 1 on failure or a non-2xx status
//	testbox write <path> <text>        write text to a file, print "wrote <path> as uid <uid>"
//	testbox cat <path>                 print a file
//	testbox tlsproxy <port> <cert> <key> <upstream> [<path prefix>=<upstream>...]
//	                                   HTTPS reverse proxy (WebSocket upgrades included) terminating TLS with a
//	                                   kubernetes.io/tls Secret's files, routing like an Ingress: the longest
//	                                   matching prefix's upstream, else the default one
package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: testbox sleep|echo|serve|get|write|cat|tlsproxy ...")
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "sleep":
		signals := make(chan os.Signal, 1)
		signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
		fmt.Println("sleeping")
		<-signals
	case "echo":
		fmt.Println(strings.Join(args, " "))
	case "serve":
		need(args, 1)
		serve(args[0])
	case "get":
		need(args, 1)
		get(args[0])
	case "write":
		need(args, 2)
		if err := os.WriteFile(args[0], []byte(args[1]), 0o644); err != nil {
			fail(err.Error())
		}
		fmt.Printf("wrote %s as uid %d\n", args[0], os.Getuid())
	case "tlsproxy":
		need(args, 4)
		tlsProxy(args[0], args[1], args[2], args[3], args[4:])
	case "cat":
		need(args, 1)
		data, err := os.ReadFile(args[0])
		if err != nil {
			fail(err.Error())
		}
		os.Stdout.Write(data)
	default:
		fail("unknown subcommand " + os.Args[1])
	}
}

func serve(port string) {
	hostname, _ := os.Hostname()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s\n", hostname)
	})
	fmt.Printf("serving on :%s\n", port)
	server := &http.Server{Addr: ":" + port, ReadHeaderTimeout: 5 * time.Second}
	fail(server.ListenAndServe().Error())
}

// tlsProxy terminates TLS in front of in-cluster Services, as an ingress controller would: httputil.ReverseProxy
// forwards WebSocket upgrades as they are, and FlushInterval -1 streams long-polling answers at once.
func tlsProxy(port, cert, key, fallback string, routes []string) {
	type route struct {
		prefix string
		proxy  *httputil.ReverseProxy
	}
	upstream := func(raw string) *httputil.ReverseProxy {
		target, err := url.Parse(raw)
		if err != nil || target.Host == "" {
			fail("not an upstream URL: " + raw)
		}
		proxy := httputil.NewSingleHostReverseProxy(target)
		proxy.FlushInterval = -1
		return proxy
	}
	var table []route
	for _, r := range routes {
		prefix, target, ok := strings.Cut(r, "=")
		if !ok || !strings.HasPrefix(prefix, "/") {
			fail("a route is <path prefix>=<upstream URL>, not " + r)
		}
		table = append(table, route{prefix, upstream(target)})
	}
	other := upstream(fallback)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		best, length := other, -1
		for _, rt := range table {
			if strings.HasPrefix(r.URL.Path, rt.prefix) && len(rt.prefix) > length {
				best, length = rt.proxy, len(rt.prefix)
			}
		}
		best.ServeHTTP(w, r)
	})
	fmt.Printf("proxying https on :%s to %s (%d routes)\n", port, fallback, len(table))
	server := &http.Server{Addr: ":" + port, Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	fail(server.ListenAndServeTLS(cert, key).Error())
}

func get(url string) {
	client := &http.Client{Timeout: 10 * time.Second}
	response, err := client.Get(url)
	if err != nil {
		fail(err.Error())
	}
	defer response.Body.Close()
	body, _ := io.ReadAll(response.Body)
	os.Stdout.Write(body)
	if response.StatusCode/100 != 2 {
		fail(response.Status)
	}
}

func need(args []string, n int) {
	if len(args) < n {
		fail(fmt.Sprintf("%s needs %d argument(s)", os.Args[1], n))
	}
}

func fail(message string) {
	fmt.Fprintln(os.Stderr, "testbox:", message)
	os.Exit(1)
}
