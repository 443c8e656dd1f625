/*
 * curltls.h - the TLS settings every libcurl handle of vigild's uplink
 * uses (the control plane in cphttp.c, the export target in exporter.c):
 * TLS 1.2 or later, the peer and its name verified against the CA handed
 * over only (never the system store), and a client certificate from memory.
 */
#ifndef VIGIL_CURLTLS_H
#define VIGIL_CURLTLS_H

#include <curl/curl.h>

/* Verify the server against ca (a PEM blob) alone. */
void curltls_pin(CURL *c, struct curl_blob *ca);

/* Present cert and key (PEM blobs) as the client's identity. */
void curltls_client(CURL *c, struct curl_blob *cert, struct curl_blob *key);

#endif
