// Keys and certificate files: Z85, the ZPL layout czmq and pyzmq write,
// atomic writes with exact modes, and errors that name the file but never a
// secret.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "security_test_support.hpp"

namespace rmon::security {
namespace {

namespace fs = std::filesystem;

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0);
  return st.st_mode & 07777;
}

TEST(Keys, Z85RoundTripsAndRejectsAnythingButFortyValidCharacters) {
  const KeyPair pair = KeyPair::generate();
  const std::string z85 = pair.public_key.z85();
  ASSERT_EQ(z85.size(), kZ85KeyChars);
  EXPECT_EQ(PublicKey::from_z85(z85), pair.public_key);
  EXPECT_FALSE(PublicKey::from_z85(z85.substr(0, 39)));
  EXPECT_FALSE(PublicKey::from_z85(z85 + "abcde"));
  std::string bad = z85;
  bad[3] = '~';  // not in the Z85 alphabet
  EXPECT_FALSE(PublicKey::from_z85(bad));
  std::string nul = z85;
  nul[5] = '\0';  // zmq_z85_decode would stop there and decode 4 bytes
  EXPECT_FALSE(PublicKey::from_z85(nul));
}

TEST(Keys, TheSecretKeyDerivesItsPublicKey) {
  const KeyPair pair = KeyPair::generate();
  EXPECT_EQ(pair.secret_key.derive_public(), pair.public_key);
  EXPECT_FALSE(KeyPair::generate().public_key == pair.public_key);
}

TEST(Certificate, RoundTripKeepsKeysAndMetadataWithExactModes) {
  rmon::testing::TempDir dir;
  const KeyPair pair = KeyPair::generate();
  const Metadata m = {{"role", "runner"}, {"runner_prefix", "eu1 -#x"}};
  ASSERT_TRUE(save_certificate(dir.path(), "r1", pair, m).ok());

  const fs::path pub = public_file(dir.path(), "r1"), sec = secret_file(dir.path(), "r1");
  EXPECT_EQ(mode_of(sec), 0600u);
  EXPECT_EQ(mode_of(pub), 0644u);
  EXPECT_EQ(read_text(pub).find("secret-key"), std::string::npos);

  auto pub_cert = load_certificate(pub);
  ASSERT_TRUE(pub_cert.ok()) << pub_cert.error().message;
  EXPECT_EQ(pub_cert->public_key, pair.public_key);
  EXPECT_FALSE(pub_cert->secret_key);
  EXPECT_EQ(pub_cert->metadata, m);

  auto keys = load_key_pair(sec);
  ASSERT_TRUE(keys.ok()) << keys.error().message;
  EXPECT_EQ(keys->public_key, pair.public_key);
  EXPECT_EQ(keys->secret_key.bytes(), pair.secret_key.bytes());
  EXPECT_FALSE(load_key_pair(pub).ok());  // a public certificate has no secret
  EXPECT_EQ(load_public_key(sec).value(), pair.public_key);
  EXPECT_FALSE(secret_file_mode_warning(sec));
}

TEST(Certificate, ReadsCzmqAndPyzmqStylesCommentsAndCrlf) {
  const KeyPair pair = KeyPair::generate();
  const std::string text =
      "#   ****  Generated on 2026-12-06 by CZMQ  ****\r\n"
      "\r\n"
      "metadata\r\n"
      "    role = runner            # pyzmq: bare\r\n"
      "    runner_prefix = \"a b\"\r\n"
      "    group = 'g#1'\r\n"
      "    empty =\r\n"
      "other\r\n"
      "    public-key = \"ignored, another section\"\r\n"
      "curve\r\n"
      "    public-key = \"" +
      pair.public_key.z85() + "\"\r\n";
  auto cert = parse_certificate(text, "x.key");
  ASSERT_TRUE(cert.ok()) << cert.error().message;
  EXPECT_EQ(cert->public_key, pair.public_key);
  EXPECT_EQ(*cert->metadata_value("role"), "runner");
  EXPECT_EQ(*cert->metadata_value("runner_prefix"), "a b");
  EXPECT_EQ(*cert->metadata_value("group"), "g#1");
  EXPECT_EQ(*cert->metadata_value("empty"), "");
  EXPECT_EQ(cert->metadata_value("missing"), nullptr);
}

TEST(Certificate, ErrorsNameTheFileAndLineButNeverTheSecret) {
  const KeyPair pair = KeyPair::generate();
  const std::string secret = pair.secret_key.reveal_z85();
  const std::string header = "curve\n    public-key = \"" + pair.public_key.z85() + "\"\n";

  std::string broken = secret;
  broken[0] = '~';
  auto bad = parse_certificate(header + "    secret-key = \"" + broken + "\"\n", "c/a.key_secret");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("c/a.key_secret: line 3: secret-key"), std::string::npos)
      << bad.error().message;
  EXPECT_EQ(bad.error().message.find(broken), std::string::npos);

  const std::string other = KeyPair::generate().secret_key.reveal_z85();
  auto mismatch = parse_certificate(header + "    secret-key = \"" + other + "\"\n", "b");
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.error().message.find("does not belong"), std::string::npos);
  EXPECT_EQ(mismatch.error().message.find(other), std::string::npos);

  auto quote = parse_certificate(header + "    secret-key = \"" + secret + "\n", "q");
  ASSERT_FALSE(quote.ok());
  EXPECT_EQ(quote.error().message.find(secret), std::string::npos);

  EXPECT_NE(parse_certificate("metadata\n    role = admin\n", "p.key").error().message,
            "");  // no public key
  EXPECT_NE(parse_certificate("    role = admin\n", "p.key").error().message.find("line 1"),
            std::string::npos);
  EXPECT_NE(
      parse_certificate(header + "    public-key = \"x\"\n", "d").error().message.find("twice"),
      std::string::npos);
}

TEST(Certificate, ReadingAMissingOrHugeFileSaysWhichFile) {
  rmon::testing::TempDir dir;
  auto missing = load_certificate(dir.path() / "none.key");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("none.key"), std::string::npos);
  std::ofstream(dir.path() / "big.key") << std::string(kMaxCertificateBytes + 1, '#');
  auto big = load_certificate(dir.path() / "big.key");
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.error().message.find("big.key: larger than"), std::string::npos);
}

TEST(Certificate, ExistingKeysAreKeptUnlessOverwriteIsAsked) {
  rmon::testing::TempDir dir;
  const KeyPair first = KeyPair::generate(), second = KeyPair::generate();
  ASSERT_TRUE(save_certificate(dir.path(), "k", first, {}).ok());
  const Status again = save_certificate(dir.path(), "k", second, {});
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message.find("exists"), std::string::npos);
  EXPECT_EQ(load_public_key(public_file(dir.path(), "k")).value(), first.public_key);

  ASSERT_TRUE(save_certificate(dir.path(), "k", second, {}, Overwrite::kYes).ok());
  EXPECT_EQ(load_key_pair(secret_file(dir.path(), "k"))->public_key, second.public_key);
  EXPECT_EQ(mode_of(secret_file(dir.path(), "k")), 0600u);
  // No temporary file is left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 2);
}

TEST(Certificate, MetadataThatZplCannotHoldIsRefused) {
  rmon::testing::TempDir dir;
  const KeyPair pair = KeyPair::generate();
  EXPECT_FALSE(save_certificate(dir.path(), "a", pair, {{"role", "x\"y"}}).ok());
  EXPECT_FALSE(save_certificate(dir.path(), "b", pair, {{"ro le", "x"}}).ok());
  EXPECT_FALSE(save_certificate(dir.path(), "c", pair, {{"role", "a\nb"}}).ok());
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(Certificate, AWorldReadableSecretFileGetsAWarning) {
  rmon::testing::TempDir dir;
  ASSERT_TRUE(save_certificate(dir.path(), "s", KeyPair::generate(), {}).ok());
  const fs::path sec = secret_file(dir.path(), "s");
  fs::permissions(sec, fs::perms(0644));
  const auto warning = secret_file_mode_warning(sec);
  ASSERT_TRUE(warning);
  EXPECT_NE(warning->find("mode 0644"), std::string::npos);
}

TEST(Principal, ComesFromTheMetadataWithItsScope) {
  const KeyPair pair = KeyPair::generate();
  const auto make = [&](Metadata m) {
    return principal_from_certificate(Certificate{pair.public_key, std::nullopt, std::move(m)}, "n",
                                      "dir/n.key");
  };
  auto runner = make({{"role", "runner"}, {"runner_prefix", "eu1-"}, {"owner", "ops"}});
  ASSERT_TRUE(runner.ok()) << runner.error().message;
  EXPECT_EQ(runner->role, Role::kRunner);
  EXPECT_EQ(runner->runner_prefix, "eu1-");
  EXPECT_EQ(runner->public_z85, pair.public_key.z85());
  EXPECT_EQ(runner->describe(), "n (runner, prefix \"eu1-\")");

  auto all = make({{"role", "runner"}, {"runner_prefix", ""}});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->runner_prefix, "");

  auto consumer = make({{"role", "consumer"}, {"group", "task-queue"}});
  ASSERT_TRUE(consumer.ok());
  EXPECT_EQ(consumer->group, "task-queue");

  EXPECT_NE(make({{"role", "runner"}}).error().message.find("runner_prefix"), std::string::npos);
  EXPECT_NE(make({{"role", "consumer"}}).error().message.find("group"), std::string::npos);
  EXPECT_NE(make({{"role", "root"}}).error().message.find("unknown role \"root\""),
            std::string::npos);
  const auto none = make({});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().message.rfind("dir/n.key: no metadata", 0), 0u) << none.error().message;
  EXPECT_NE(none.error().message.find("pyzmq"), std::string::npos);
}

}  // namespace
}  // namespace rmon::security
