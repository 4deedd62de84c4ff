#include "asdcap/png.hpp"

#include <zlib.h>

#include <cstdlib>
#include <vector>

#include "asdcap/error.hpp"

namespace asdcap {
namespace {

void put_u32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

void put_chunk(std::string& out, const char type[4], const std::string& data) {
  put_u32(out, static_cast<uint32_t>(data.size()));
  std::string body(type, 4);
  body += data;
  out += body;
  uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()));
  put_u32(out, static_cast<uint32_t>(crc));
}

// Filter type per row: the one with the smallest sum of |byte as signed|, the usual heuristic.
void filter_row(const uint8_t* row, const uint8_t* prev, size_t n, std::vector<uint8_t>& out) {
  std::vector<uint8_t> cand[3];
  for (auto& c : cand) c.resize(n);
  for (size_t i = 0; i < n; ++i) {
    uint8_t left = i >= 3 ? row[i - 3] : 0;
    uint8_t up = prev ? prev[i] : 0;
    cand[0][i] = row[i];
    cand[1][i] = static_cast<uint8_t>(row[i] - left);
    cand[2][i] = static_cast<uint8_t>(row[i] - up);
  }
  int best = 0;
  long best_cost = -1;
  for (int f = 0; f < 3; ++f) {
    long cost = 0;
    for (uint8_t v : cand[f]) cost += std::abs(static_cast<int>(static_cast<int8_t>(v)));
    if (best_cost < 0 || cost < best_cost) best_cost = cost, best = f;
  }
  out.push_back(static_cast<uint8_t>(best));  // PNG filter types 0 None, 1 Sub, 2 Up
  out.insert(out.end(), cand[best].begin(), cand[best].end());
}

}  // namespace

std::string encode_png_rgb(const uint8_t* rgb, int width, int height) {
  if (width <= 0 || height <= 0 || width > 16384 || height > 16384)
    throw Error("PNG: bad image size " + std::to_string(width) + "x" + std::to_string(height));
  const size_t stride = static_cast<size_t>(width) * 3;
  std::vector<uint8_t> raw;
  raw.reserve((stride + 1) * static_cast<size_t>(height));
  for (int y = 0; y < height; ++y)
    filter_row(rgb + stride * static_cast<size_t>(y), y > 0 ? rgb + stride * static_cast<size_t>(y - 1) : nullptr,
               stride, raw);
  uLongf zlen = compressBound(static_cast<uLong>(raw.size()));
  std::string z(zlen, '\0');
  if (compress2(reinterpret_cast<Bytef*>(z.data()), &zlen, raw.data(), static_cast<uLong>(raw.size()), 6) != Z_OK)
    throw Error("PNG: zlib compression failed");
  z.resize(zlen);

  std::string png("\x89PNG\r\n\x1a\n", 8);
  std::string ihdr;
  put_u32(ihdr, static_cast<uint32_t>(width));
  put_u32(ihdr, static_cast<uint32_t>(height));
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8 bit, RGB, deflate, adaptive filter, no interlace
  put_chunk(png, "IHDR", ihdr);
  put_chunk(png, "IDAT", z);
  put_chunk(png, "IEND", "");
  return png;
}

std::string base64_encode(std::string_view bytes) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (static_cast<uint8_t>(bytes[i]) << 16) | (static_cast<uint8_t>(bytes[i + 1]) << 8) |
                 static_cast<uint8_t>(bytes[i + 2]);
    out += alphabet[v >> 18];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    out += alphabet[v >> 18];
    out += alphabet[(v >> 12) & 63];
    out += rest == 2 ? alphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string data_uri(std::string_view mime, std::string_view bytes) {
  std::string out = "data:";
  out += mime;
  out += ";base64,";
  out += base64_encode(bytes);
  return out;
}

}  // namespace asdcap
