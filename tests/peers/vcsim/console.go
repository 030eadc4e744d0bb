// The VM console methods govmomi 0.24's simulator lacks: VirtualMachine.PutUsbScanCodes (vSphere's keyboard API,
// which Packer's boot_command uses) and VirtualMachine.CreateScreenshot_Task. pyVmomi calls them as it calls any
// vCenter: SOAP requests to /sdk, answered with the usual envelopes, the screenshot as a Task whose result is the
// datastore path of a PNG in the VM's folder.
//
// The simulator dispatches SOAP methods to methods of its own Go types, which cannot be extended from here (a
// wrapper type breaks its property collector), so these two are answered in front of it: requests for them are
// decoded with the simulator's own UnmarshalBody and answered here; every other request goes on unchanged.
//
// The keys reach the rehearsal lab through the VM itself: every key is appended to the VM's extraConfig option
// "palette.lab.usbScanCodes" ("TOTAL:code,code,..." with the HID usage ids of the last 256 keys, hex), which the
// lab's watcher reads with the rest of the VM's config and types on the lab machine's console. The screenshot is
// what the lab drew: the watcher writes the lab machine's console as "console.png" into the VM's folder on the
// datastore; CreateScreenshot_Task copies it to "<vm>-<n>.png" (a black screen when the lab has drawn nothing yet)
// and returns that file's datastore path, as vCenter does.
package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"image"
	"image/png"
	"io/ioutil"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

const (
	poweredOff  = "<requestedState>poweredOn</requestedState><existingState>poweredOff</existingState>"
	keysOption  = "palette.lab.usbScanCodes"
	keptKeys    = 256
	consoleFile = "console.png"
)

type consoleMethods struct {
	next  http.Handler
	mu    sync.Mutex
	keys  map[string][]string // VM moref -> HID usage ids (hex), newest last
	total map[string]int
	shots map[string]int
}

func newConsoleMethods(next http.Handler) *consoleMethods {
	return &consoleMethods{next: next, keys: map[string][]string{}, total: map[string]int{}, shots: map[string]int{}}
}

func (c *consoleMethods) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/sdk" {
		c.next.ServeHTTP(w, r)
		return
	}
	body, err := ioutil.ReadAll(r.Body)
	_ = r.Body.Close()
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.Body = ioutil.NopCloser(bytes.NewReader(body))
	if !bytes.Contains(body, []byte("PutUsbScanCodes")) && !bytes.Contains(body, []byte("CreateScreenshot_Task")) {
		c.next.ServeHTTP(w, r)
		return
	}
	method, err := simulator.UnmarshalBody(types.TypeFunc(), body)
	if err != nil || (method.Name != "PutUsbScanCodes" && method.Name != "CreateScreenshot_Task") {
		c.next.ServeHTTP(w, r)
		return
	}
	// Only a logged-in client: vCenter refuses both methods without a session.
	if cookie, err := r.Cookie("vmware_soap_session"); err != nil || cookie.Value == "" {
		c.fault(w, "NotAuthenticated", "not logged in",
			fmt.Sprintf(`<object type="VirtualMachine">%s</object><privilegeId>System.View</privilegeId>`,
				method.This.Value))
		return
	}
	vm, ok := simulator.Map.Get(method.This).(*simulator.VirtualMachine)
	if !ok {
		c.fault(w, "ManagedObjectNotFound", fmt.Sprintf("%s not found", method.This),
			fmt.Sprintf(`<obj type="%s">%s</obj>`, method.This.Type, method.This.Value))
		return
	}
	if method.Name == "PutUsbScanCodes" {
		c.putKeys(w, vm, method.Body.(*types.PutUsbScanCodes))
		return
	}
	c.screenshot(w, vm)
}

func (c *consoleMethods) putKeys(w http.ResponseWriter, vm *simulator.VirtualMachine, req *types.PutUsbScanCodes) {
	if vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
		c.fault(w, "InvalidPowerState", "the virtual machine is not powered on", poweredOff)
		return
	}
	ref := vm.Self.Value
	c.mu.Lock()
	for _, event := range req.Spec.KeyEvents {
		c.keys[ref] = append(c.keys[ref], strconv.FormatInt(int64((event.UsbHidCode>>16)&0xffff), 16))
		c.total[ref]++
	}
	if len(c.keys[ref]) > keptKeys {
		c.keys[ref] = c.keys[ref][len(c.keys[ref])-keptKeys:]
	}
	value := fmt.Sprintf("%d:%s", c.total[ref], strings.Join(c.keys[ref], ","))
	c.mu.Unlock()
	simulator.Map.WithLock(vm, func() {
		options := []types.BaseOptionValue{}
		for _, option := range vm.Config.ExtraConfig {
			if option.GetOptionValue().Key != keysOption {
				options = append(options, option)
			}
		}
		options = append(options, &types.OptionValue{Key: keysOption, Value: value})
		simulator.Map.Update(vm, []types.PropertyChange{{Name: "config.extraConfig", Val: options}})
	})
	c.respond(w, "PutUsbScanCodesResponse", fmt.Sprintf("<returnval>%d</returnval>", len(req.Spec.KeyEvents)))
}

// vmFolder is the VM's folder on its datastore: its datastore path and where the simulator keeps it on disk.
func vmFolder(vm *simulator.VirtualMachine) (object.DatastorePath, string, error) {
	var p object.DatastorePath
	if !p.FromString(vm.Config.Files.VmPathName) {
		return p, "", fmt.Errorf("cannot parse %q", vm.Config.Files.VmPathName)
	}
	for _, entity := range simulator.Map.All("Datastore") {
		ds := entity.(*simulator.Datastore)
		if ds.Name == p.Datastore {
			return object.DatastorePath{Datastore: p.Datastore, Path: path.Dir(p.Path)},
				path.Join(ds.Info.GetDatastoreInfo().Url, path.Dir(p.Path)), nil
		}
	}
	return p, "", fmt.Errorf("datastore %s not found", p.Datastore)
}

func blackScreen() []byte {
	img := image.NewGray(image.Rect(0, 0, 640, 400)) // all zero: black
	var out bytes.Buffer
	_ = png.Encode(&out, img)
	return out.Bytes()
}

func (c *consoleMethods) screenshot(w http.ResponseWriter, vm *simulator.VirtualMachine) {
	if vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
		c.fault(w, "InvalidPowerState", "the virtual machine is not powered on", poweredOff)
		return
	}
	c.mu.Lock()
	c.shots[vm.Self.Value]++
	n := c.shots[vm.Self.Value]
	c.mu.Unlock()
	task := simulator.CreateTask(vm, "createScreenshot", func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		folder, dir, err := vmFolder(vm)
		if err != nil {
			return nil, &types.FileFault{File: vm.Config.Files.VmPathName}
		}
		data, err := ioutil.ReadFile(path.Join(dir, consoleFile))
		if err != nil {
			data = blackScreen() // the lab has not drawn this console yet
		}
		name := fmt.Sprintf("%s-%d.png", vm.Name, n)
		if err := os.WriteFile(path.Join(dir, name), data, 0o644); err != nil {
			return nil, &types.FileFault{File: name}
		}
		return folder.String() + "/" + name, nil
	})
	c.respond(w, "CreateScreenshot_TaskResponse",
		fmt.Sprintf(`<returnval type="Task">%s</returnval>`, task.Run().Value))
}

func (c *consoleMethods) respond(w http.ResponseWriter, element, inner string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, `%s<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" `+
		`xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" `+
		`xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><%s xmlns="urn:vim25">%s</%s>`+
		`</soapenv:Body></soapenv:Envelope>`, xml.Header, element, inner, element)
}

func (c *consoleMethods) fault(w http.ResponseWriter, kind, message, fields string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	var escaped bytes.Buffer
	_ = xml.EscapeText(&escaped, []byte(message))
	fmt.Fprintf(w, `%s<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" `+
		`xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>`+
		`<faultcode>ServerFaultCode</faultcode><faultstring>%s</faultstring><detail>`+
		`<%sFault xmlns="urn:vim25" xsi:type="%s">%s</%sFault></detail></soapenv:Fault></soapenv:Body>`+
		`</soapenv:Envelope>`, xml.Header, escaped.String(), kind, kind, fields, kind)
}
