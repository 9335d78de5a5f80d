#pragma once
// Expected failures of the security layer as values: a file that cannot be
// read, a key that does not decode, a certificate without its role. The
// message names the file (and line) and never holds a secret key.

#include <string>
#include <utility>

#include "rmon/expected.hpp"

namespace rmon::security {

struct Error {
  std::string message;  // "clients/r1.key: line 7: public-key is not a 40-character Z85 key"
};

template <class T>
using Expected = rmon::Expected<T, Error>;

// Expected without a value.
using Status = BasicStatus<Error>;

}  // namespace rmon::security
