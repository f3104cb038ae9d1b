# auscout — the two commands:
#   make run     build everything, then a redis-server with the module loaded (port 6379, data in ./data)
#                and the HTTP service with its page (http://127.0.0.1:8080/); Ctrl-C stops both
#   make test    every test: unit tests, integration tests against real redis-servers, end-to-end client tests,
#                and, in profile `checked` (overflow checks), the engine's unit tests again and the
#                module's panic-safety test (faults injected into writes)
# and:
#   make build | make install [PREFIX=/usr/local] | make bench | make lint | make clean
#   make screenshots   the browser test, saving its screenshots of the page to docs/

PREFIX ?= /usr/local
CARGO ?= cargo
STRIP ?= strip
PORT ?= 6379
LISTEN ?= 127.0.0.1:8080
# cargo's output: ./target, or $CARGO_TARGET_DIR when it is set.
TARGET := $(abspath $(or $(CARGO_TARGET_DIR),target))
MODULE := $(TARGET)/release/libauscout.so
CLIENT := $(TARGET)/release/auscoutclient
HTTP := $(TARGET)/release/auscout-http

.PHONY: all build run test test-install bench bench-server lint install uninstall clean deps deps-test screenshots

all: build

deps:
	@bash scripts/deps.sh build

deps-test:
	@bash scripts/deps.sh test

build: deps
	$(CARGO) build --release --workspace

# Redis enters --dir before it loads modules, so the config it runs gets the
# module's absolute path (the same rewrite `install` does). scripts/auscout-run.sh
# starts Redis, then the service, prints the page's URL and stops both on Ctrl-C.
run: build
	@mkdir -p data
	sed 's|^loadmodule .*libauscout.so|loadmodule $(MODULE)|' redis.conf > data/redis.conf
	@echo "auscout: redis-server on port $(PORT) with $(MODULE); data in ./data; client: $(CLIENT)"
	@AUSCOUT_REDIS_CONF=data/redis.conf AUSCOUT_HTTP_BIN=$(HTTP) AUSCOUT_DATA=$(CURDIR)/data \
		AUSCOUT_REDIS_PORT=$(PORT) AUSCOUT_LISTEN=$(LISTEN) bash scripts/auscout-run.sh

test: deps-test
	$(CARGO) build --release --workspace
	$(CARGO) test --workspace --release
	$(CARGO) test -p auscout-core --lib --profile checked --features fault-injection
	$(CARGO) test -p auscout-module --profile checked --features fault-injection --test panic_safety

# Installs the module, the client, the HTTP service, auscout-run (both together)
# and a redis.conf that loads the installed module. The installed binaries
# keep their symbols (names in backtraces) but not the line tables the
# release profile keeps for profiling: 26 MB instead of 144.
install: build
	install -d $(DESTDIR)$(PREFIX)/lib/auscout $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/etc/auscout
	install -m 0755 $(MODULE) $(DESTDIR)$(PREFIX)/lib/auscout/libauscout.so
	install -m 0755 $(CLIENT) $(DESTDIR)$(PREFIX)/bin/auscoutclient
	install -m 0755 $(HTTP) $(DESTDIR)$(PREFIX)/bin/auscout-http
	install -m 0755 scripts/auscout-run.sh $(DESTDIR)$(PREFIX)/bin/auscout-run
	$(STRIP) --strip-debug $(DESTDIR)$(PREFIX)/lib/auscout/libauscout.so \
		$(DESTDIR)$(PREFIX)/bin/auscoutclient $(DESTDIR)$(PREFIX)/bin/auscout-http
	sed 's|^loadmodule .*libauscout.so|loadmodule $(PREFIX)/lib/auscout/libauscout.so|' redis.conf \
		> $(DESTDIR)$(PREFIX)/etc/auscout/redis.conf
	@echo "installed: $(PREFIX)/lib/auscout/libauscout.so $(PREFIX)/bin/auscoutclient $(PREFIX)/bin/auscout-http $(PREFIX)/bin/auscout-run $(PREFIX)/etc/auscout/redis.conf"
	@echo "start:     redis-server $(PREFIX)/etc/auscout/redis.conf --dir /path/to/data"
	@echo "or both:   AUSCOUT_DATA=/path/to/data $(PREFIX)/bin/auscout-run   (Redis + the page on http://127.0.0.1:8080/)"

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/lib/auscout/libauscout.so $(DESTDIR)$(PREFIX)/bin/auscoutclient \
		$(DESTDIR)$(PREFIX)/bin/auscout-http $(DESTDIR)$(PREFIX)/bin/auscout-run \
		$(DESTDIR)$(PREFIX)/etc/auscout/redis.conf
	-rmdir $(DESTDIR)$(PREFIX)/lib/auscout $(DESTDIR)$(PREFIX)/etc/auscout

# What the Docker image's build stage does, checked end to end without Docker:
# install into a scratch prefix, start the installed server, add and look up a file;
# then the installed auscout-run (the image's entrypoint): the page and the API.
test-install:
	bash scripts/test-install.sh

screenshots: deps-test
	AUSCOUT_SCREENSHOTS=$(CURDIR)/docs $(CARGO) test --release -p auscout-http --test browser

bench:
	$(CARGO) bench --workspace

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
