// Certificates across implementations: files written by Debian's python3-zmq
// (zmq.auth.create_certificates) load here, and pyzmq's
// zmq.auth.load_certificate reads ours. Skipped, saying why, when python3
// cannot import zmq.auth.

#include <gtest/gtest.h>

#include <fstream>

#include "keygen/stack_keys.hpp"
#include "rmon/security/keyring.hpp"
#include "security_test_support.hpp"

namespace rmon::security {
namespace {

namespace fs = std::filesystem;
using testing::run_command;
using testing::sh_quote;

const std::string kPython = RMON_PYTHON3;

bool have_pyzmq() {
  static const bool ok = run_command(kPython + " -c 'import zmq.auth'").status == 0;
  return ok;
}
#define SKIP_WITHOUT_PYZMQ() \
  if (!have_pyzmq())         \
  GTEST_SKIP() << kPython << " cannot import zmq.auth: apt-get install python3-zmq"

// Runs `script` with python3 and `args` (shell-quoted already).
testing::CommandResult run_python(const fs::path& dir, const std::string& script,
                                  const std::string& args) {
  std::ofstream(dir / "script.py") << script;
  return run_command(kPython + " " + sh_quote((dir / "script.py").string()) + " " + args);
}

TEST(Pyzmq, CertificatesItWritesLoadAndItsPublicKeyNeedsMetadata) {
  rmon::testing::TempDir dir;
  const fs::path keys = dir.path() / "keys";
  fs::create_directory(keys);
  SKIP_WITHOUT_PYZMQ();
  const auto py = run_python(dir.path(),
                             "import sys, zmq.auth\n"
                             "pub, sec = zmq.auth.create_certificates(sys.argv[1], 'py-runner',\n"
                             "    metadata={'role': 'runner', 'runner_prefix': 'py-'})\n"
                             "print(zmq.auth.load_certificate(pub)[0].decode())\n",
                             sh_quote(keys.string()));
  ASSERT_EQ(py.status, 0) << py.output;
  const std::string z85 = py.output.substr(0, kZ85KeyChars);

  // The secret certificate: both keys, and the metadata (bare values).
  auto pair = load_key_pair(keys / "py-runner.key_secret");
  ASSERT_TRUE(pair.ok()) << pair.error().message;
  EXPECT_EQ(pair->public_key.z85(), z85);
  auto secret_cert = load_certificate(keys / "py-runner.key_secret");
  auto principal = principal_from_certificate(secret_cert.value(), "py-runner", "s");
  ASSERT_TRUE(principal.ok()) << principal.error().message;
  EXPECT_EQ(principal->runner_prefix, "py-");

  // The public certificate loads, but pyzmq left its metadata out: as a
  // client key it is an error that names the file.
  auto pub = load_certificate(keys / "py-runner.key");
  ASSERT_TRUE(pub.ok()) << pub.error().message;
  EXPECT_EQ(pub->public_key.z85(), z85);
  EXPECT_TRUE(pub->metadata.empty());
  try {
    Keyring keyring(keys);
    FAIL() << "a clients directory of pyzmq .key files loaded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find((keys / "py-runner.key").string() + ": no metadata"),
              std::string::npos)
        << e.what();
  }

  // rmon-keygen --public-from writes the public certificate with metadata.
  const fs::path clients = dir.path() / "clients";
  auto written = keygen::public_from_secret(keys / "py-runner.key_secret", clients, Overwrite::kNo);
  ASSERT_TRUE(written.ok()) << written.error().message;
  Keyring keyring(clients);
  const Principal* p = keyring.snapshot()->find(z85);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->name, "py-runner");
}

TEST(Pyzmq, LoadCertificateReadsOurs) {
  rmon::testing::TempDir dir;
  const KeyPair pair = KeyPair::generate();
  ASSERT_TRUE(save_certificate(dir.path(), "ours", pair,
                               principal_metadata(Role::kConsumer, {}, "task-queue"))
                  .ok());
  SKIP_WITHOUT_PYZMQ();
  const auto py = run_python(dir.path(),
                             "import sys, zmq.auth\n"
                             "for f in sys.argv[1:]:\n"
                             "    pub, sec = zmq.auth.load_certificate(f)\n"
                             "    print(pub.decode(), sec.decode() if sec else None)\n",
                             sh_quote(public_file(dir.path(), "ours").string()) + " " +
                                 sh_quote(secret_file(dir.path(), "ours").string()));
  ASSERT_EQ(py.status, 0) << py.output;
  const std::string pub = pair.public_key.z85();
  EXPECT_EQ(py.output, pub + " None\n" + pub + " " + pair.secret_key.reveal_z85() + "\n");
}

}  // namespace
}  // namespace rmon::security
