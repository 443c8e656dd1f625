/*
 * curltls.c - one TLS configuration for the uplink's libcurl handles (see curltls.h).
 */
#include "curltls.h"

void curltls_pin(CURL *c, struct curl_blob *ca)
{
	curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	/* no CA file or directory of the system: only the blob */
	curl_easy_setopt(c, CURLOPT_CAINFO, NULL);
	curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
	curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, ca);
}

void curltls_client(CURL *c, struct curl_blob *cert, struct curl_blob *key)
{
	curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
	curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, cert);
	curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
	curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, key);
}
