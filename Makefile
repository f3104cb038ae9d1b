# auscout — the two commands:
#   make run     build everything, then a redis-server with the module loaded (port 6379, data in ./data)
#   make test    every test: unit tests, integration tests against real redis-servers, end-to-end client tests
# and:
#   make build | make install [PREFIX=/usr/local] | make bench | make lint | make clean

PREFIX ?= /usr/local
CARGO ?= cargo
PORT ?= 6379
MODULE := target/release/libauscout.so
CLIENT := target/release/auscoutclient

.PHONY: all build run test test-install bench bench-server lint install uninstall clean deps deps-test

all: build

deps:
	@bash scripts/deps.sh build

deps-test:
	@bash scripts/deps.sh test

build: deps
	$(CARGO) build --release --workspace

# Redis enters --dir before it loads modules, so the config it runs gets the
# module's absolute path (the same rewrite `install` does).
run: build
	@mkdir -p data
	sed 's|^loadmodule .*libauscout.so|loadmodule $(CURDIR)/$(MODULE)|' redis.conf > data/redis.conf
	@echo "auscout: redis-server on port $(PORT) with $(MODULE); data in ./data; client: $(CLIENT)"
	redis-server data/redis.conf --dir $(CURDIR)/data --port $(PORT)

test: deps-test
	$(CARGO) build --release --workspace
	$(CARGO) test --workspace --release

# Installs the module, the client and a redis.conf that loads the installed module.
install: build
	install -d $(DESTDIR)$(PREFIX)/lib/auscout $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/etc/auscout
	install -m 0755 $(MODULE) $(DESTDIR)$(PREFIX)/lib/auscout/libauscout.so
	install -m 0755 $(CLIENT) $(DESTDIR)$(PREFIX)/bin/auscoutclient
	sed 's|^loadmodule .*libauscout.so|loadmodule $(PREFIX)/lib/auscout/libauscout.so|' redis.conf \
		> $(DESTDIR)$(PREFIX)/etc/auscout/redis.conf
	@echo "installed: $(PREFIX)/lib/auscout/libauscout.so $(PREFIX)/bin/auscoutclient $(PREFIX)/etc/auscout/redis.conf"
	@echo "start:     redis-server $(PREFIX)/etc/auscout/redis.conf --dir /path/to/data"

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/lib/auscout/libauscout.so $(DESTDIR)$(PREFIX)/bin/auscoutclient \
		$(DESTDIR)$(PREFIX)/etc/auscout/redis.conf
	-rmdir $(DESTDIR)$(PREFIX)/lib/auscout $(DESTDIR)$(PREFIX)/etc/auscout

# What the Docker image's build stage does, checked end to end without Docker:
# install into a scratch prefix, start the installed server, add and look up a file.
test-install:
	bash scripts/test-install.sh

bench:
	$(CARGO) bench --workspace

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
