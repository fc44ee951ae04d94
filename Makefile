# NoChat release builds: make dist
#
# Four static, stripped, pure-Go binaries (no cgo: they run on any Linux of
# their architecture, nothing to install beside them) and their SHA256SUMS:
#
#   dist/nochat-linux-amd64    PCs and servers
#   dist/nochat-linux-arm64    Raspberry Pi 3, 4, 5 and Zero 2 W on a 64-bit OS
#   dist/nochat-linux-armv7    Raspberry Pi 2, 3, 4, Zero 2 W on a 32-bit OS
#   dist/nochat-linux-armv6    Raspberry Pi 1 and Zero (W) on a 32-bit OS
#
# -trimpath keeps this machine's paths out of the binary; -s -w drop the
# symbol table and DWARF (a third of the size; panics still show file:line);
# main.version, main.commit and main.date are what `nochat version` prints.
# The date is the commit's, not the clock's, so the same commit builds the
# same bytes (anyone can rebuild and compare with SHA256SUMS).

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
DATE    ?= $(shell TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null || echo unknown)
GO      ?= go
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)
TARGETS := amd64 arm64 armv7 armv6

.PHONY: dist clean $(TARGETS:%=dist/nochat-linux-%)

dist: $(TARGETS:%=dist/nochat-linux-%)
	cd dist && sha256sum $(TARGETS:%=nochat-linux-%) > SHA256SUMS
	@cd dist && ls -l $(TARGETS:%=nochat-linux-%) SHA256SUMS

# Always rebuilt (phony): go build's own cache makes that cheap, and make
# cannot see which sources changed.
dist/nochat-linux-amd64: GOARCH_ENV := GOARCH=amd64
dist/nochat-linux-arm64: GOARCH_ENV := GOARCH=arm64
dist/nochat-linux-armv7: GOARCH_ENV := GOARCH=arm GOARM=7
dist/nochat-linux-armv6: GOARCH_ENV := GOARCH=arm GOARM=6

$(TARGETS:%=dist/nochat-linux-%):
	@mkdir -p dist
	CGO_ENABLED=0 GOOS=linux $(GOARCH_ENV) $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $@ .

clean:
	rm -rf dist
