# Builds and installs the library like a C library:
#   make install PREFIX=/usr/local   (DESTDIR honoured; PROFILE=debug to install a debug build)
# installs the shared library with a versioned soname, the static library, the
# header and a pkg-config file, so that C programs build with
#   cc prog.c $(pkg-config --cflags --libs apiserver_storage)

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PROFILE ?= release
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
MAJOR := $(firstword $(subst ., ,$(VERSION)))
LIB := libapiserver_storage
OUT := target/$(PROFILE)

.PHONY: build install uninstall

build:
	cargo build --lib $(if $(filter release,$(PROFILE)),--release,)

install: build
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)
	install -m 644 include/apiserver_storage.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 755 $(OUT)/$(LIB).so $(DESTDIR)$(LIBDIR)/$(LIB).so.$(VERSION)
	ln -sf $(LIB).so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(LIB).so.$(MAJOR)
	ln -sf $(LIB).so.$(MAJOR) $(DESTDIR)$(LIBDIR)/$(LIB).so
	install -m 644 $(OUT)/$(LIB).a $(DESTDIR)$(LIBDIR)/
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCLUDEDIR@|$(INCLUDEDIR)|; s|@VERSION@|$(VERSION)|' \
	  apiserver_storage.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/apiserver_storage.pc

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/apiserver_storage.h $(DESTDIR)$(LIBDIR)/$(LIB).so* \
	  $(DESTDIR)$(LIBDIR)/$(LIB).a $(DESTDIR)$(LIBDIR)/pkgconfig/apiserver_storage.pc
