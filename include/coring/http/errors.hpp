// SPDX-License-Identifier: MIT
// The HTTP client's exceptions, after aiohttp's client_exceptions: every one names the method and
// URL it failed on.
#pragma once

#include <stdexcept>
#include <string>

namespace coring::http {

/// Base of the client's errors (aiohttp.ClientError). what() reads "GET http://host/path: why".
/// Timeouts are coring::TimeoutError instead (not a ClientError: see docs/asyncio-mapping.md).
class ClientError : public std::runtime_error {
public:
    ClientError(const std::string& url, const std::string& what)
        : std::runtime_error(what), url_(url) {}

    /// The URL of the request that failed.
    const std::string& url() const noexcept { return url_; }

private:
    std::string url_;
};

/// The URL cannot be requested: malformed, not http or https, or no host (aiohttp.InvalidURL).
class InvalidUrl : public ClientError {
public:
    using ClientError::ClientError;
};

/// A connection-level failure (aiohttp.ClientConnectionError).
class ClientConnectionError : public ClientError {
public:
    using ClientError::ClientError;
};

/// No connection could be made: the name does not resolve, the server refuses, the proxy fails
/// (aiohttp.ClientConnectorError).
class ClientConnectorError : public ClientConnectionError {
public:
    using ClientConnectionError::ClientConnectionError;
};

/// The TLS handshake failed (aiohttp.ClientSSLError).
class ClientSslError : public ClientConnectorError {
public:
    using ClientConnectorError::ClientConnectorError;
};

/// The server's certificate was not accepted: untrusted, expired, or for another host
/// (aiohttp.ClientConnectorCertificateError).
class ClientConnectorCertificateError : public ClientSslError {
public:
    using ClientSslError::ClientSslError;
};

/// The server closed the connection before a complete response (aiohttp.ServerDisconnectedError).
class ServerDisconnectedError : public ClientConnectionError {
public:
    using ClientConnectionError::ClientConnectionError;
};

/// The response body could not be read to its end: the connection broke mid-body, a chunked or
/// compressed encoding was malformed (aiohttp.ClientPayloadError).
class ClientPayloadError : public ClientError {
public:
    using ClientError::ClientError;
};

/// A response that is an error: from Response::raise_for_status (status >= 400), or a response
/// the client rejects (aiohttp.ClientResponseError). status() is 0 when no status was read.
class ClientResponseError : public ClientError {
public:
    ClientResponseError(const std::string& url, int status, const std::string& what)
        : ClientError(url, what), status_(status) {}

    /// The HTTP status, as aiohttp's `status`.
    int status() const noexcept { return status_; }

private:
    int status_;
};

/// More redirects than ClientOptions::max_redirects (aiohttp.TooManyRedirects).
class TooManyRedirects : public ClientResponseError {
public:
    using ClientResponseError::ClientResponseError;
};

/// Response::json() on a body whose Content-Type is not JSON (aiohttp.ContentTypeError).
class ContentTypeError : public ClientResponseError {
public:
    using ClientResponseError::ClientResponseError;
};

} // namespace coring::http
