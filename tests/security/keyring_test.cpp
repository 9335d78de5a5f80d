// The keyring: what loads, what is skipped and why, reloads that add and
// remove keys, the start-up rule, per-thread views, and the watcher.

#include <gtest/gtest.h>

#include <fstream>

#include "../support/wait.hpp"
#include "rmon/security/keyring.hpp"
#include "rmon/security/keyring_watcher.hpp"
#include "security_test_support.hpp"

namespace rmon::security {
namespace {

namespace fs = std::filesystem;
using testing::enroll;

class KeyringTest : public ::testing::Test {
 protected:
  KeyringTest() : clients_(dir_.path() / "clients") { fs::create_directory(clients_); }
  rmon::testing::TempDir dir_;
  const fs::path clients_;
};

bool mentions(const ReloadResult& r, const std::string& file, const std::string& what) {
  for (const auto& e : r.errors) {
    if (e.file.filename() == file && e.reason.find(what) != std::string::npos) return true;
  }
  return false;
}

TEST_F(KeyringTest, LoadsEveryClientKeyByItsPublicKey) {
  const KeyPair runner = enroll(clients_, "runner-eu1", Role::kRunner, "eu1-");
  const KeyPair consumer = enroll(clients_, "tq", Role::kConsumer, "task-queue");
  enroll(clients_, "ops", Role::kAdmin);
  Keyring keyring(clients_);
  EXPECT_EQ(keyring.size(), 3u);
  EXPECT_EQ(keyring.first_load().outcome, ReloadOutcome::kOk);
  EXPECT_EQ(keyring.reloads(ReloadOutcome::kOk), 1u);
  const auto keys = keyring.snapshot();
  const Principal* p = keys->find(runner.public_key.z85());
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->name, "runner-eu1");
  EXPECT_EQ(p->runner_prefix, "eu1-");
  EXPECT_EQ(keys->find(consumer.public_key.z85())->group, "task-queue");
  EXPECT_EQ(keys->find(KeyPair::generate().public_key.z85()), nullptr);
  EXPECT_EQ(keys->names(), (std::vector<std::string>{"ops", "runner-eu1", "tq"}));
}

TEST_F(KeyringTest, BadFilesAreSkippedWithTheirReasonAndTheRestLoads) {
  const KeyPair good = enroll(clients_, "good", Role::kReader);
  std::ofstream(clients_ / "garbage.key") << "not a certificate\n";
  ASSERT_TRUE(
      save_public_certificate(clients_ / "norole.key", KeyPair::generate().public_key, {}).ok());
  ASSERT_TRUE(save_certificate(clients_, "secret", KeyPair::generate(),
                               principal_metadata(Role::kAdmin, {}, {}))
                  .ok());
  ASSERT_TRUE(save_public_certificate(clients_ / "twin.key", good.public_key,
                                      principal_metadata(Role::kAdmin, {}, {}))
                  .ok());
  std::ofstream(clients_ / "README") << "ignored: not a .key file\n";
  std::ofstream(clients_ / ".hidden.key") << "ignored: hidden\n";

  Keyring keyring(clients_);
  const ReloadResult& r = keyring.first_load();
  EXPECT_EQ(r.outcome, ReloadOutcome::kPartial);
  EXPECT_EQ(r.errors.size(), 4u);
  EXPECT_TRUE(mentions(r, "garbage.key", "line 1"));
  EXPECT_TRUE(mentions(r, "norole.key", "no metadata"));
  EXPECT_TRUE(mentions(r, "secret.key_secret", "a secret key in a clients directory"));
  EXPECT_TRUE(mentions(r, "twin.key", "the same public key as good.key"));
  // secret.key (its public half) loads; the twin does not take over good's key.
  EXPECT_EQ(keyring.snapshot()->names(), (std::vector<std::string>{"good", "secret"}));
  EXPECT_EQ(keyring.snapshot()->find(good.public_key.z85())->role, Role::kReader);
}

TEST_F(KeyringTest, NoUsableKeyAtStartIsAStartupError) {
  EXPECT_THROW(Keyring{clients_}, std::runtime_error);  // empty
  EXPECT_THROW(Keyring{dir_.path() / "missing"}, std::runtime_error);
  std::ofstream(clients_ / "bad.key") << "metadata\n";
  try {
    Keyring keyring(clients_);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.key: no public-key"), std::string::npos) << e.what();
  }
}

TEST_F(KeyringTest, ReloadAddsAndRemovesKeys) {
  const KeyPair a = enroll(clients_, "a", Role::kReader);
  Keyring keyring(clients_);
  const uint64_t generation = keyring.generation();
  const KeyPair b = enroll(clients_, "b", Role::kSubmitter);
  fs::remove(public_file(clients_, "a"));

  const ReloadResult r = keyring.reload();
  EXPECT_EQ(r.outcome, ReloadOutcome::kOk);
  EXPECT_EQ(r.keys, 1u);
  EXPECT_EQ(r.added, 1u);
  EXPECT_EQ(r.removed, 1u);
  EXPECT_GT(keyring.generation(), generation);
  EXPECT_EQ(keyring.snapshot()->find(a.public_key.z85()), nullptr);
  EXPECT_EQ(keyring.snapshot()->find(b.public_key.z85())->name, "b");
  EXPECT_EQ(keyring.reloads(ReloadOutcome::kOk), 2u);

  // Removing every key revokes every key: a reload may leave none.
  fs::remove(public_file(clients_, "b"));
  EXPECT_EQ(keyring.reload().keys, 0u);
  EXPECT_EQ(keyring.size(), 0u);
}

TEST_F(KeyringTest, AnUnlistableDirectoryKeepsThePreviousKeys) {
  const KeyPair a = enroll(clients_, "a", Role::kReader);
  Keyring keyring(clients_);
  fs::rename(clients_, dir_.path() / "moved");
  const ReloadResult r = keyring.reload();
  EXPECT_EQ(r.outcome, ReloadOutcome::kFailed);
  EXPECT_NE(r.dir_error.find("cannot list"), std::string::npos);
  EXPECT_EQ(r.keys, 1u);
  EXPECT_NE(keyring.snapshot()->find(a.public_key.z85()), nullptr);
  EXPECT_EQ(keyring.reloads(ReloadOutcome::kFailed), 1u);
}

TEST_F(KeyringTest, AViewSeesTheNextReload) {
  const KeyPair a = enroll(clients_, "a", Role::kReader);
  enroll(clients_, "b", Role::kReader);
  Keyring keyring(clients_);
  KeyringView view(keyring);
  ASSERT_NE(view.find(a.public_key.z85()), nullptr);
  fs::remove(public_file(clients_, "a"));
  ASSERT_TRUE(keyring.reload().outcome == ReloadOutcome::kOk);
  EXPECT_EQ(view.find(a.public_key.z85()), nullptr);
}

TEST_F(KeyringTest, TheWatcherReloadsWhenTheDirectoryChanges) {
  enroll(clients_, "first", Role::kReader);
  Keyring keyring(clients_);
  std::vector<std::string> causes;
  std::mutex mu;
  KeyringWatcher watcher(
      keyring,
      [&](const ReloadResult&, std::string_view cause) {
        std::lock_guard lock(mu);
        causes.emplace_back(cause);
      },
      std::chrono::milliseconds(20));
  const KeyPair added = enroll(clients_, "added", Role::kReader);
  ASSERT_TRUE(rmon::testing::wait_until(
      [&] { return keyring.snapshot()->find(added.public_key.z85()) != nullptr; },
      std::chrono::seconds(5)));
  fs::remove(public_file(clients_, "added"));
  ASSERT_TRUE(rmon::testing::wait_until(
      [&] { return keyring.snapshot()->find(added.public_key.z85()) == nullptr; },
      std::chrono::seconds(5)));
  std::lock_guard lock(mu);
  ASSERT_FALSE(causes.empty());
  EXPECT_EQ(causes.front(), "directory changed");
}

TEST_F(KeyringTest, TriggerReloadsAtOnce) {
  enroll(clients_, "first", Role::kReader);
  Keyring keyring(clients_);
  KeyringWatcher watcher(
      keyring, [](const ReloadResult&, std::string_view) {},
      std::chrono::hours(1));  // only trigger() can reload in time
  const KeyPair added = enroll(clients_, "added", Role::kReader);
  watcher.trigger();
  ASSERT_TRUE(
      rmon::testing::wait_until([&] { return watcher.reloads() >= 1; }, std::chrono::seconds(5)));
  EXPECT_NE(keyring.snapshot()->find(added.public_key.z85()), nullptr);
}

TEST_F(KeyringTest, TheWatcherFollowsADirectoryReplacedUnderIt) {
  enroll(clients_, "first", Role::kReader);
  Keyring keyring(clients_);
  KeyringWatcher watcher(
      keyring, [](const ReloadResult&, std::string_view) {}, std::chrono::milliseconds(20));
  fs::rename(clients_, dir_.path() / "old");
  fs::create_directory(clients_);
  const KeyPair fresh = enroll(clients_, "fresh", Role::kReader);
  watcher.trigger();  // a SIGHUP re-arms the watch on the new directory
  ASSERT_TRUE(rmon::testing::wait_until(
      [&] { return keyring.snapshot()->find(fresh.public_key.z85()) != nullptr; },
      std::chrono::seconds(5)));
  const KeyPair later = enroll(clients_, "later", Role::kReader);
  EXPECT_TRUE(rmon::testing::wait_until(
      [&] { return keyring.snapshot()->find(later.public_key.z85()) != nullptr; },
      std::chrono::seconds(5)));
}

}  // namespace
}  // namespace rmon::security
