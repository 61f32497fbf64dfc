// fake-gpu-device-plugin advertises N fake "nvidia.com/gpu" devices to the kubelet through the
// kubelet device-plugin gRPC API (v1beta1), the way NVIDIA's device plugin does on real GPU
// nodes. Pods that request nvidia.com/gpu get NVIDIA_VISIBLE_DEVICES (the IDs of the devices
// allocated to them) and GENCLUSTER_FAKE_GPU=1 in their environment. There is no GPU behind it:
// it exists so that scheduling, quotas and the operator's GPU accounting can be tested on a
// machine without GPUs. It is for the gencluster local test cluster only.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

type plugin struct {
	pluginapi.UnimplementedDevicePluginServer
	devices []*pluginapi.Device
	known   map[string]bool
	stop    chan struct{}
}

func (p *plugin) GetDevicePluginOptions(context.Context, *pluginapi.Empty) (*pluginapi.DevicePluginOptions, error) {
	return &pluginapi.DevicePluginOptions{}, nil
}

func (p *plugin) ListAndWatch(_ *pluginapi.Empty, s pluginapi.DevicePlugin_ListAndWatchServer) error {
	if err := s.Send(&pluginapi.ListAndWatchResponse{Devices: p.devices}); err != nil {
		return err
	}
	select { // the fake devices never change health
	case <-p.stop:
	case <-s.Context().Done():
	}
	return nil
}

func (p *plugin) Allocate(_ context.Context, req *pluginapi.AllocateRequest) (*pluginapi.AllocateResponse, error) {
	resp := &pluginapi.AllocateResponse{}
	for _, cr := range req.ContainerRequests {
		for _, id := range cr.DevicesIds {
			if !p.known[id] {
				return nil, fmt.Errorf("unknown fake device %q", id)
			}
		}
		log.Printf("allocate %v", cr.DevicesIds)
		resp.ContainerResponses = append(resp.ContainerResponses, &pluginapi.ContainerAllocateResponse{
			Envs: map[string]string{
				"NVIDIA_VISIBLE_DEVICES": strings.Join(cr.DevicesIds, ","),
				"GENCLUSTER_FAKE_GPU":    "1",
			},
		})
	}
	return resp, nil
}

func (p *plugin) PreStartContainer(context.Context, *pluginapi.PreStartContainerRequest) (*pluginapi.PreStartContainerResponse, error) {
	return &pluginapi.PreStartContainerResponse{}, nil
}

func inode(path string) uint64 {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0
	}
	return st.Ino
}

func register(kubeletSock, endpoint, resource string) error {
	conn, err := grpc.NewClient("unix://"+kubeletSock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = pluginapi.NewRegistrationClient(conn).Register(ctx, &pluginapi.RegisterRequest{
		Version:      pluginapi.Version,
		Endpoint:     endpoint,
		ResourceName: resource,
		Options:      &pluginapi.DevicePluginOptions{},
	})
	return err
}

func main() {
	count := flag.Int("count", 8, "number of fake devices to advertise")
	resource := flag.String("resource", "nvidia.com/gpu", "extended resource name")
	dir := flag.String("dir", pluginapi.DevicePluginPath, "kubelet device-plugin socket directory")
	prefix := flag.String("id-prefix", "fake-gpu-", "prefix of the fake device IDs")
	flag.Parse()
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)

	p := &plugin{known: map[string]bool{}}
	for i := 0; i < *count; i++ {
		id := fmt.Sprintf("%s%d", *prefix, i)
		p.devices = append(p.devices, &pluginapi.Device{ID: id, Health: pluginapi.Healthy})
		p.known[id] = true
	}
	endpoint := "fake-gpu-device-plugin.sock"
	sock := filepath.Join(*dir, endpoint)
	kubeletSock := filepath.Join(*dir, filepath.Base(pluginapi.KubeletSocket))

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	for {
		// The kubelet empties this directory when it starts: wait for its socket first.
		for inode(kubeletSock) == 0 {
			select {
			case <-sigs:
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
		p.stop = make(chan struct{})
		_ = os.MkdirAll(*dir, 0o755)
		_ = os.Remove(sock)
		lis, err := net.Listen("unix", sock)
		if err != nil {
			log.Fatalf("listen %s: %v", sock, err)
		}
		srv := grpc.NewServer()
		pluginapi.RegisterDevicePluginServer(srv, p)
		go func() { _ = srv.Serve(lis) }()

		if err := register(kubeletSock, endpoint, *resource); err != nil {
			log.Printf("registration failed, retrying: %v", err)
			close(p.stop)
			srv.Stop()
			select {
			case <-sigs:
				_ = os.Remove(sock)
				return
			case <-time.After(time.Second):
			}
			continue
		}
		kubeletIno := inode(kubeletSock)
		log.Printf("registered %d fake %s devices with the kubelet (socket %s)", *count, *resource, sock)

		// A restarted kubelet removes plugin sockets and recreates its own: register again.
	watch:
		for {
			select {
			case <-sigs:
				close(p.stop)
				srv.Stop()
				_ = os.Remove(sock)
				log.Printf("stopped")
				return
			case <-time.After(time.Second):
				if inode(sock) == 0 || inode(kubeletSock) != kubeletIno {
					log.Printf("kubelet restarted; registering again")
					break watch
				}
			}
		}
		close(p.stop)
		srv.Stop()
	}
}
