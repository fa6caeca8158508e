// SPDX-License-Identifier: MIT
#include "tls/tls_certs.hpp"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

namespace coring::test {

namespace {

struct KeyFree {
    void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};

struct CertFree {
    void operator()(X509* x) const noexcept { X509_free(x); }
};

using Key = std::unique_ptr<EVP_PKEY, KeyFree>;
using Cert = std::unique_ptr<X509, CertFree>;

Key make_key() {
    Key key(EVP_EC_gen("P-256"));
    if (!key) {
        throw std::runtime_error("EVP_EC_gen failed");
    }
    return key;
}

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (ext == nullptr) {
        throw std::runtime_error(std::string("bad extension ") + value);
    }
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
}

// A certificate for cn with key, signed by (issuer, issuer_key) or self-signed when issuer is
// null; valid from `from` to `to` seconds relative to now.
Cert make_cert(const char* cn,
               EVP_PKEY* key,
               X509* issuer,
               EVP_PKEY* issuer_key,
               bool ca,
               const char* san,
               long from,
               long to,
               long serial) {
    Cert cert(X509_new());
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), from);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), to);
    X509_set_pubkey(cert.get(), key);
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name,
                               "O",
                               MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("coring tests"),
                               -1,
                               -1,
                               0);
    X509_NAME_add_entry_by_txt(
            name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
    X509* signer = issuer != nullptr ? issuer : cert.get();
    X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
    if (ca) {
        add_ext(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
        add_ext(cert.get(), signer, NID_subject_key_identifier, "hash");
    } else {
        add_ext(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(cert.get(), signer, NID_key_usage, "critical,digitalSignature");
        add_ext(cert.get(), signer, NID_ext_key_usage, "serverAuth,clientAuth");
        if (san != nullptr) {
            add_ext(cert.get(), signer, NID_subject_alt_name, san);
        }
    }
    if (X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) == 0) {
        throw std::runtime_error("X509_sign failed");
    }
    return cert;
}

void write_cert(const std::string& path, X509* cert) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr || PEM_write_X509(f, cert) != 1) {
        throw std::runtime_error("cannot write " + path);
    }
    std::fclose(f);
}

void write_key(const std::string& path, EVP_PKEY* key) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr || PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
        throw std::runtime_error("cannot write " + path);
    }
    std::fclose(f);
}

std::string made_dir; // removed at exit

void remove_dir() {
    std::error_code ec;
    std::filesystem::remove_all(made_dir, ec);
}

TlsFiles make_files() {
    char tmpl[] = "/tmp/coring-tls-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
        throw std::runtime_error("mkdtemp failed");
    }
    TlsFiles f;
    f.dir = tmpl;
    made_dir = f.dir;
    std::atexit(remove_dir);
    const long day = 24 * 3600;
    const char* local = "DNS:localhost,IP:127.0.0.1,IP:::1";

    Key ca_key = make_key();
    Cert ca = make_cert(
            "coring test CA", ca_key.get(), nullptr, nullptr, true, nullptr, -day, 30 * day, 1);
    f.ca = f.dir + "/ca.pem";
    write_cert(f.ca, ca.get());

    auto leaf = [&](const char* name,
                    const char* cn,
                    const char* san,
                    long from,
                    long to,
                    long serial,
                    X509* issuer,
                    EVP_PKEY* issuer_key,
                    std::string& cert_path,
                    std::string& key_path) {
        Key key = make_key();
        Cert cert = make_cert(cn, key.get(), issuer, issuer_key, false, san, from, to, serial);
        cert_path = f.dir + "/" + name + ".pem";
        key_path = f.dir + "/" + name + ".key";
        write_cert(cert_path, cert.get());
        write_key(key_path, key.get());
    };
    leaf("server",
         "localhost",
         local,
         -day,
         30 * day,
         2,
         ca.get(),
         ca_key.get(),
         f.server_cert,
         f.server_key);
    leaf("expired",
         "localhost",
         local,
         -30 * day,
         -day,
         3,
         ca.get(),
         ca_key.get(),
         f.expired_cert,
         f.expired_key);
    leaf("wrong-host",
         "wrong.example",
         "DNS:wrong.example",
         -day,
         30 * day,
         4,
         ca.get(),
         ca_key.get(),
         f.wrong_host_cert,
         f.wrong_host_key);
    leaf("client",
         "coring test client",
         nullptr,
         -day,
         30 * day,
         5,
         ca.get(),
         ca_key.get(),
         f.client_cert,
         f.client_key);

    Key other_key = make_key();
    Cert other = make_cert(
            "untrusted CA", other_key.get(), nullptr, nullptr, true, nullptr, -day, 30 * day, 6);
    leaf("untrusted",
         "localhost",
         local,
         -day,
         30 * day,
         7,
         other.get(),
         other_key.get(),
         f.untrusted_cert,
         f.untrusted_key);
    return f;
}

} // namespace

const TlsFiles& tls_files() {
    static const TlsFiles files = make_files();
    return files;
}

coring::tls::SslContext server_ctx() {
    const TlsFiles& f = tls_files();
    return coring::tls::SslContext::server(f.server_cert, f.server_key);
}

coring::tls::SslContext client_ctx() {
    coring::tls::SslContext ctx = coring::tls::SslContext::client();
    ctx.load_verify_locations(tls_files().ca);
    return ctx;
}

} // namespace coring::test
