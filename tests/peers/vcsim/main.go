// A vCenter simulator for the vSphere integration tests, built from Debian's govmomi (vcsim 0.24.2).
// One datacenter DC0, a DRS cluster DC0_C0 with three hosts, datastore LocalDS_0, two VMs; REST (vAPI tagging)
// endpoints registered; PutUsbScanCodes and CreateScreenshot_Task on VMs (console.go); plain HTTP, or HTTPS with -tls (its own certificate with -cert/-key). It prints its URL
// on one line and runs until SIGTERM or SIGINT, then removes its datastore folders.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/vmware/govmomi/simulator"
	_ "github.com/vmware/govmomi/vapi/simulator"
)

func main() {
	addr := flag.String("l", "127.0.0.1:0", "listen address")
	useTLS := flag.Bool("tls", false, "serve HTTPS")
	certFile := flag.String("cert", "", "PEM certificate for -tls (default: the built-in test certificate)")
	keyFile := flag.String("key", "", "PEM key for -cert")
	flag.Parse()

	m := simulator.VPX()
	m.Host = 0
	m.ClusterHost = 3
	m.Machine = 2
	if err := m.Create(); err != nil {
		log.Fatal(err)
	}
	defer m.Remove()

	m.Service.Listen = &url.URL{Host: *addr}
	m.Service.RegisterEndpoints = true // the vapi simulator (tagging under /rest) needs it
	m.Service.TLS = nil
	if *useTLS {
		m.Service.TLS = new(tls.Config)
		if *certFile != "" {
			cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
			if err != nil {
				log.Fatal(err)
			}
			m.Service.TLS.Certificates = []tls.Certificate{cert}
		}
	}

	s := m.Service.NewServer()
	defer s.Close()
	// In front of the simulator (console.go): the VM console methods it lacks. Set before any client connects.
	s.Config.Handler = newConsoleMethods(s.Config.Handler)
	fmt.Println(s.URL.String())
	os.Stdout.Sync()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}
