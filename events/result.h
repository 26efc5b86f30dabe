// Result<T>: a value or an Error, the only way failures cross a layer boundary.
//
// An Error carries the exact HTTP status and ECS error Code the API returns
// (SPEC.md §1.3–1.4, §3.1), plus a human message. No layer lets an exception
// escape; library exceptions are caught at the edge and turned into an Error.
// Thread safety: plain values, no shared state.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace sl {

struct Error {
  int http = 500;
  std::string code;
  std::string message;

  bool operator==(const Error&) const = default;
};

inline Error make_error(int http, std::string code, std::string message = {}) {
  return Error{http, std::move(code), std::move(message)};
}

template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}     // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  // REQUIRES: ok()
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

  // REQUIRES: !ok()
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result<void>: success carries nothing.
struct Ok {
  bool operator==(const Ok&) const = default;
};
using Status = Result<Ok>;

}  // namespace sl
