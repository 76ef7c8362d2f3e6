// Byte-level primitives of the wire format: big-endian fixed integers,
// LEB128 varints and length-prefixed strings.
//
// Reader never reads outside its span and never allocates more than the bytes
// it was given can justify: every length is checked against both a caller's
// bound and the bytes that remain. A failure is sticky (ok() turns false and
// every later read yields zero/empty), so a decoder checks once at the end.
// Counts are also charged to a budget shared by a whole frame, so that many
// small elements cannot decode into much more memory than the bytes took.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace regfs::cluster::wire {

class Writer {
 public:
  void u8(std::uint8_t v) { buf_.push_back(v); }
  void u16(std::uint16_t v) {
    buf_.push_back(static_cast<std::uint8_t>(v >> 8));
    buf_.push_back(static_cast<std::uint8_t>(v));
  }
  void varint(std::uint64_t v) {
    while (v >= 0x80) {
      buf_.push_back(static_cast<std::uint8_t>(v | 0x80));
      v >>= 7;
    }
    buf_.push_back(static_cast<std::uint8_t>(v));
  }
  void str(std::string_view s) {
    varint(s.size());
    buf_.insert(buf_.end(), s.begin(), s.end());
  }
  void bytes(std::span<const std::uint8_t> b) { buf_.insert(buf_.end(), b.begin(), b.end()); }

  std::size_t size() const { return buf_.size(); }
  std::vector<std::uint8_t>& buffer() { return buf_; }
  std::vector<std::uint8_t> take() { return std::move(buf_); }

 private:
  std::vector<std::uint8_t> buf_;
};

// Elements (messages, records, items ...) a whole frame may still decode
// into, shared by the readers of its messages.
struct Budget {
  std::size_t left = 0;
  bool exceeded = false;
};

class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> data, Budget* budget = nullptr)
      : data_(data), budget_(budget) {}

  bool ok() const { return ok_; }
  bool at_end() const { return pos_ == data_.size(); }
  std::size_t remaining() const { return data_.size() - pos_; }
  // Marks the input bad (a decoder's semantic check failed).
  void fail() { ok_ = false; pos_ = data_.size(); }

  std::uint8_t u8() {
    if (remaining() < 1) { fail(); return 0; }
    return data_[pos_++];
  }
  std::uint16_t u16() {
    if (remaining() < 2) { fail(); return 0; }
    const auto v = static_cast<std::uint16_t>((data_[pos_] << 8) | data_[pos_ + 1]);
    pos_ += 2;
    return v;
  }
  // LEB128, at most 10 bytes; overlong encodings past 64 bits fail.
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (remaining() < 1) { fail(); return 0; }
      const std::uint8_t b = data_[pos_++];
      if (shift == 63 && b > 1) { fail(); return 0; }
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    fail();
    return 0;
  }
  std::uint32_t varint32() {
    const std::uint64_t v = varint();
    if (v > 0xffffffffu) { fail(); return 0; }
    return static_cast<std::uint32_t>(v);
  }
  // A string of at most `max` bytes.
  std::string str(std::size_t max) {
    const std::uint64_t n = varint();
    if (!ok_ || n > max || n > remaining()) { fail(); return {}; }
    std::string s(reinterpret_cast<const char*>(data_.data() + pos_), static_cast<std::size_t>(n));
    pos_ += static_cast<std::size_t>(n);
    return s;
  }
  // An element count of at most `max`, each element taking at least
  // `min_bytes`, and charged to the frame's budget: what a caller may
  // reserve without trusting the input.
  std::size_t count(std::size_t max, std::size_t min_bytes) {
    const std::uint64_t n = varint();
    if (!ok_ || n > max || n * min_bytes > remaining()) { fail(); return 0; }
    if (!charge(static_cast<std::size_t>(n))) return 0;
    return static_cast<std::size_t>(n);
  }
  // Takes `n` elements from the frame's budget; fails when it has not that many.
  bool charge(std::size_t n) {
    if (budget_ == nullptr) return true;
    if (n > budget_->left) {
      budget_->exceeded = true;
      fail();
      return false;
    }
    budget_->left -= n;
    return true;
  }
  // The next `n` bytes as a sub-span (n checked against what remains).
  std::span<const std::uint8_t> take(std::size_t n) {
    if (n > remaining()) { fail(); return {}; }
    auto s = data_.subspan(pos_, n);
    pos_ += n;
    return s;
  }

 private:
  std::span<const std::uint8_t> data_;
  Budget* budget_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace regfs::cluster::wire
