# packaging/deb.mk - the installed layout and the Debian packages; included
# by the Makefile.
#
#   make programs   what the packages ship: the programs and the BPF objects
#                   (no tests, no signatures)
#   make install DESTDIR=DIR [BPF_SIGDIR=DIR] [TRUST_PEM=FILE]
#                   the installed layout under DIR: the signatures from
#                   BPF_SIGDIR, the trust store from TRUST_PEM (by default
#                   this tree's development CA and its signatures)
#   make deb [SIGNING_CERT=FILE SIGNING_KEY=FILE|pkcs11:URI SIGNING_CA=FILE]
#                   the five .deb files in build/deb/, built offline with
#                   dpkg-buildpackage -b -us -uc (debian/rules).  With the
#                   three files, the BPF objects are signed with the given
#                   certificate and key and /etc/vigil/trust.pem is
#                   SIGNING_CA: a release build.  Without them, a CA made for
#                   the build signs them, and the build is marked as a
#                   development build (the packages' Vigil-Signing field,
#                   and vigild says so at start).  The key is read where it
#                   is, never copied; SIGNING_KEY may name a key in a
#                   PKCS#11 token instead (an RFC 7512 URI: the key never
#                   leaves the token; signing/p11key.h, docs/signing.md).
#
# Installed layout (the units in packaging/systemd/ and selinux/vigil.fc
# name the same paths):
#   /usr/libexec/vigil/   vigild and its four worker programs, which it
#                         finds beside its own path; /usr/sbin/vigild links
#                         to it
#   /usr/lib/vigil/bpf/   profile.bpf.o and its signature
#   /etc/vigil/           trust.pem, policy.yaml.example (conffiles)
#   /usr/sbin/vigil-cp, /usr/bin/vigilctl, /usr/bin/vigil-sign
#   /usr/lib/systemd/system/  vigild.service, vigil-cp.service
#   /usr/share/selinux/packages/vigil.pp  (built by make -C selinux)

BPF_SIGDIR ?= $(B)/bpf
TRUST_PEM  ?= $(DEV_CA)/ca.pem
SELINUX_PP ?= selinux/vigil.pp
MAN_PAGES  := $(wildcard docs/*.[1-8])

programs: $(PROGRAMS) $(B)/bpf/profile.bpf.o

install: programs
	$(call msg,INSTALL,$(DESTDIR))
	$(Q)test -f $(BPF_SIGDIR)/profile.bpf.o.sig || \
		{ echo "make install: $(BPF_SIGDIR)/profile.bpf.o.sig missing (sign the object first)" >&2; exit 1; }
	$(Q)test -f "$(TRUST_PEM)" || { echo "make install: trust store $(TRUST_PEM) missing" >&2; exit 1; }
	$(Q)test -f $(SELINUX_PP) || { echo "make install: $(SELINUX_PP) missing (make -C selinux)" >&2; exit 1; }
	$(Q)install -d -m 0755 $(DESTDIR)/usr/libexec/vigil $(DESTDIR)/usr/sbin $(DESTDIR)/usr/bin \
		$(DESTDIR)/usr/lib/vigil/bpf $(DESTDIR)/etc/vigil
	$(Q)install -m 0755 $(VIGILD_PROGS) $(DESTDIR)/usr/libexec/vigil/
	$(Q)ln -sfn ../libexec/vigil/vigild $(DESTDIR)/usr/sbin/vigild
	$(Q)install -m 0755 $(B)/vigil-cp $(DESTDIR)/usr/sbin/
	$(Q)install -m 0755 $(B)/vigilctl $(B)/vigil-sign $(DESTDIR)/usr/bin/
	$(Q)install -m 0644 $(B)/bpf/profile.bpf.o $(BPF_SIGDIR)/profile.bpf.o.sig $(DESTDIR)/usr/lib/vigil/bpf/
	$(Q)install -m 0644 "$(TRUST_PEM)" $(DESTDIR)/etc/vigil/trust.pem
	$(Q)install -m 0644 packaging/policy.yaml.example $(DESTDIR)/etc/vigil/policy.yaml.example
	$(Q)install -D -m 0644 packaging/systemd/vigild.service $(DESTDIR)/usr/lib/systemd/system/vigild.service
	$(Q)install -D -m 0644 packaging/systemd/vigil-cp.service $(DESTDIR)/usr/lib/systemd/system/vigil-cp.service
	$(Q)install -D -m 0644 $(SELINUX_PP) $(DESTDIR)/usr/share/selinux/packages/vigil.pp
	$(Q)install -D -m 0644 packaging/systemd/vigild-network.conf $(DESTDIR)/usr/share/doc/vigild/examples/network.conf
	$(Q)for f in $(MAN_PAGES); do \
		s=$${f##*.}; install -D -m 0644 $$f $(DESTDIR)/usr/share/man/man$$s/$${f##*/} || exit 1; \
	done

deb:
	$(Q)if [ -n "$(SIGNING_CERT)$(SIGNING_KEY)$(SIGNING_CA)" ] && \
		{ [ -z "$(SIGNING_CERT)" ] || [ -z "$(SIGNING_KEY)" ] || [ -z "$(SIGNING_CA)" ]; }; then \
		echo "make deb: a release build needs all three of SIGNING_CERT (the signer's certificate), SIGNING_KEY (its key) and SIGNING_CA (the CA bundle vigild will trust, /etc/vigil/trust.pem); none of them makes a development build" >&2; \
		exit 2; \
	fi
	$(Q)rm -rf $(B)/deb && mkdir -p $(B)/deb
	@# Our variables reach debian/rules through the environment only (not
	@# MAKEFLAGS, which would override them), each path made absolute.
	$(Q)unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES; \
	for kv in 'SIGNING_CERT=$(SIGNING_CERT)' 'SIGNING_KEY=$(SIGNING_KEY)' 'SIGNING_CA=$(SIGNING_CA)'; do \
		v=$${kv%%=*} p=$${kv#*=}; \
		if [ -z "$$p" ]; then unset "$$v"; continue; fi; \
		case $$v:$$p in SIGNING_KEY:[pP][kK][cC][sS]11:*) export "$$v=$$p"; continue ;; esac; \
		a=$$(realpath -e -- "$$p") || { echo "make deb: $$v: $$p: no such file" >&2; exit 2; }; \
		export "$$v=$$a"; \
	done; \
	case " $${DEB_BUILD_OPTIONS:-} " in *" parallel="*) ;; \
	*) export DEB_BUILD_OPTIONS="parallel=$$(nproc) $${DEB_BUILD_OPTIONS:-}" ;; esac; \
	VIGIL_DEB_DIR=$(abspath $(B)/deb) dpkg-buildpackage -b -us -uc \
		--buildinfo-option=-u$(B)/deb --changes-option=-u$(B)/deb \
		--buildinfo-file=$(B)/deb/vigil_$(VERSION).buildinfo --changes-file=$(B)/deb/vigil_$(VERSION).changes \
		> $(B)/deb/build.log 2>&1 || \
		{ tail -30 $(B)/deb/build.log >&2; echo "make deb: dpkg-buildpackage failed; the log is $(B)/deb/build.log" >&2; exit 1; }
	$(Q)ls $(B)/deb/*.deb

.PHONY: programs install deb
