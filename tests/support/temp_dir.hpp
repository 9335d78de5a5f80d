#pragma once
// A fresh folder under the system temp dir, removed with everything in it
// when the object goes out of scope. For tests.

#include <filesystem>
#include <random>
#include <string>
#include <system_error>

namespace rmon::testing {

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    for (int i = 0; i < 100; ++i) {
      path_ = std::filesystem::temp_directory_path() /
              ("rmon-test-" + std::to_string(rd()) + std::to_string(rd()));
      if (std::filesystem::create_directory(path_)) return;
    }
    throw std::runtime_error("cannot create a temp folder");
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace rmon::testing
