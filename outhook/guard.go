package outhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// MaxURLBytes bounds a webhook's URL.
const MaxURLBytes = 2048

// ErrRefusedAddress is why a webhook's host may not be called: it is, or
// resolves to, an address inside this machine or its networks (loopback,
// private, link-local such as the cloud metadata 169.254.169.254,
// unspecified, multicast, carrier-grade NAT), and -webhook-allow does not
// name it.
var ErrRefusedAddress = errors.New("the webhook's host is, or resolves to, a loopback, private, link-local, multicast or CGNAT address; an admin may allow it with -webhook-allow host or host:port")

// Resolver looks a host name up; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Guard decides which webhook hosts NoChat may connect to, and connects
// only to the address it checked: the name is resolved once, every
// address it has is checked, and the connection goes to one of those
// addresses, so a name cannot resolve to a public address for the check
// and to a private one for the connection (DNS rebinding).
type Guard struct {
	allow    map[string]bool // "host" (any port) or "host:port", lowercased
	resolver Resolver
	dialer   net.Dialer
}

// NewGuard is a Guard that lets through, besides public addresses, the
// hosts and host:port pairs in allow (as -webhook-allow lists them). A nil
// resolver is net.DefaultResolver.
func NewGuard(allow []string, resolver Resolver) *Guard {
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	g := &Guard{allow: make(map[string]bool, len(allow)), resolver: resolver, dialer: net.Dialer{Timeout: 7 * time.Second}}
	for _, a := range allow {
		g.allow[strings.ToLower(a)] = true
	}
	return g
}

// ParseAllow reads -webhook-allow: comma-separated host names, IP
// addresses, or host:port pairs ([v6]:port for an IPv6 address with a
// port).
func ParseAllow(list string) ([]string, error) {
	var out []string
	for _, a := range strings.Split(list, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			host, port = strings.Trim(a, "[]"), ""
		}
		if host == "" || strings.ContainsAny(host, "/@ ") || port != "" && !validPort(port) {
			return nil, fmt.Errorf("-webhook-allow %q: want host, IP or host:port, comma-separated", a)
		}
		if port == "" {
			out = append(out, host)
		} else {
			out = append(out, net.JoinHostPort(host, port))
		}
	}
	return out, nil
}

func validPort(p string) bool {
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
		if n > 65535 {
			return false
		}
	}
	return n > 0
}

// allowed reports whether the admin allowed host (as the URL names it)
// on port.
func (g *Guard) allowed(host, port string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	return g.allow[host] || g.allow[net.JoinHostPort(host, port)]
}

// Refused reports whether ip is not on the internet: loopback, private
// (RFC 1918, ULA), link-local (169.254/16 with the cloud metadata
// address, fe80::/10), unspecified, multicast, or shared (100.64/10).
func Refused(ip netip.Addr) bool {
	ip = ip.Unmap()
	return !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() || sharedAddrs.Contains(ip)
}

// sharedAddrs is carrier-grade NAT space (RFC 6598): not the internet.
var sharedAddrs = netip.MustParsePrefix("100.64.0.0/10")

// resolve returns the addresses host:port may be reached at, all of them
// checked, or why not.
func (g *Guard) resolve(ctx context.Context, host, port string) ([]netip.Addr, error) {
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		ips = []netip.Addr{ip}
	} else {
		if ips, err = g.resolver.LookupNetIP(ctx, "ip", host); err != nil {
			return nil, fmt.Errorf("resolve %s: %w", host, err)
		}
		if len(ips) == 0 {
			return nil, fmt.Errorf("resolve %s: no address", host)
		}
	}
	if g.allowed(host, port) {
		return ips, nil
	}
	for _, ip := range ips {
		if Refused(ip) {
			return nil, fmt.Errorf("%s (%s): %w", host, ip.Unmap(), ErrRefusedAddress)
		}
	}
	return ips, nil
}

// DialContext connects to addr (host:port) at an address it resolved and
// checked just now: the http.Transport's dialer.
func (g *Guard) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ips, err := g.resolve(ctx, host, port)
	if err != nil {
		return nil, err
	}
	var first error
	for _, ip := range ips {
		c, err := g.dialer.DialContext(ctx, network, net.JoinHostPort(ip.Unmap().String(), port))
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

// CheckURL reports why raw may not be a webhook's URL, or nil: it must be
// an absolute http or https URL without a user or password, at most
// MaxURLBytes long, whose host passes the guard now (a name that resolves
// to a refused address is refused; the guard checks again at each call).
func (g *Guard) CheckURL(ctx context.Context, raw string) error {
	if len(raw) > MaxURLBytes {
		return fmt.Errorf("the webhook URL is longer than %d bytes", MaxURLBytes)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.Opaque != "" {
		return errors.New("the webhook URL must be an absolute http:// or https:// URL")
	}
	if u.User != nil {
		return errors.New("the webhook URL may not carry a user or password: the request is signed instead")
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = g.resolve(ctx, u.Hostname(), port)
	return err
}
