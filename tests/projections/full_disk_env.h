// A RocksDB Env whose files fail every write and sync with "No space" while
// `full` is set: a full disk on demand, for the disk-full tests of the ledger
// (tests/projections) and of the HTTP answers (tests/api).
#pragma once

#include <rocksdb/env.h>

#include <atomic>
#include <memory>
#include <string>

namespace sl::testing {

// Every file write and sync fails with "No space" while `full` is set.
class FullDiskEnv : public rocksdb::EnvWrapper {
 public:
  explicit FullDiskEnv(rocksdb::Env* base) : rocksdb::EnvWrapper(base) {}
  std::atomic<bool> full{false};

  rocksdb::Status NewWritableFile(const std::string& name, std::unique_ptr<rocksdb::WritableFile>* result,
                                  const rocksdb::EnvOptions& options) override {
    if (full) return rocksdb::Status::NoSpace("test: disk full");
    auto s = target()->NewWritableFile(name, result, options);
    if (s.ok()) *result = std::make_unique<File>(std::move(*result), full);
    return s;
  }

 private:
  class File : public rocksdb::WritableFileWrapper {
   public:
    File(std::unique_ptr<rocksdb::WritableFile> base, std::atomic<bool>& full)
        : rocksdb::WritableFileWrapper(base.get()), base_(std::move(base)), full_(full) {}
    rocksdb::Status Append(const rocksdb::Slice& data) override {
      return full_ ? rocksdb::Status::NoSpace("test: disk full") : base_->Append(data);
    }
    rocksdb::Status Append(const rocksdb::Slice& data, const rocksdb::DataVerificationInfo& info) override {
      return full_ ? rocksdb::Status::NoSpace("test: disk full") : base_->Append(data, info);
    }
    rocksdb::Status Sync() override { return full_ ? rocksdb::Status::NoSpace("test: disk full") : base_->Sync(); }
    rocksdb::Status Fsync() override { return full_ ? rocksdb::Status::NoSpace("test: disk full") : base_->Fsync(); }

   private:
    std::unique_ptr<rocksdb::WritableFile> base_;
    std::atomic<bool>& full_;
  };
};

}  // namespace sl::testing
