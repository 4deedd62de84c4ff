#include "report/png.hpp"

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
// `bpp`: bytes per pixel (the "left" neighbour's distance).
void filter_row(const uint8_t* row, const uint8_t* prev, size_t n, size_t bpp, std::vector<uint8_t>& out) {
  std::vector<uint8_t> cand[3];
  for (auto& c : cand) c.resize(n);
  for (size_t i = 0; i < n; ++i) {
    uint8_t left = i >= bpp ? row[i - bpp] : 0;
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

// Filters, deflates and wraps rows of `bpp` bytes per pixel; `plte` is empty for RGB.
std::string encode_png(const uint8_t* pixels, int width, int height, size_t bpp, uint8_t color_type,
                       const std::string& plte) {
  if (width <= 0 || height <= 0 || width > 16384 || height > 16384)
    throw Error("PNG: bad image size " + std::to_string(width) + "x" + std::to_string(height));
  const size_t stride = static_cast<size_t>(width) * bpp;
  std::vector<uint8_t> raw;
  raw.reserve((stride + 1) * static_cast<size_t>(height));
  for (int y = 0; y < height; ++y)
    filter_row(pixels + stride * static_cast<size_t>(y), y > 0 ? pixels + stride * static_cast<size_t>(y - 1) : nullptr,
               stride, bpp, raw);
  uLongf zlen = compressBound(static_cast<uLong>(raw.size()));
  std::string z(zlen, '\0');
  if (compress2(reinterpret_cast<Bytef*>(z.data()), &zlen, raw.data(), static_cast<uLong>(raw.size()), 9) != Z_OK)
    throw Error("PNG: zlib compression failed");
  z.resize(zlen);

  std::string png("\x89PNG\r\n\x1a\n", 8);
  std::string ihdr;
  put_u32(ihdr, static_cast<uint32_t>(width));
  put_u32(ihdr, static_cast<uint32_t>(height));
  ihdr += static_cast<char>(8);  // bit depth
  ihdr += static_cast<char>(color_type);
  ihdr += std::string("\x00\x00\x00", 3);  // deflate, adaptive filter, no interlace
  put_chunk(png, "IHDR", ihdr);
  if (!plte.empty()) put_chunk(png, "PLTE", plte);
  put_chunk(png, "IDAT", z);
  put_chunk(png, "IEND", "");
  return png;
}

}  // namespace

std::string encode_png_rgb(const uint8_t* rgb, int width, int height) {
  return encode_png(rgb, width, height, 3, 2, "");
}

std::string encode_png_indexed(const uint8_t* index, int width, int height, const uint8_t* palette_rgb, int n_colors) {
  if (n_colors < 1 || n_colors > 256)
    throw Error("PNG: a palette holds 1 to 256 colours, not " + std::to_string(n_colors));
  const std::string plte(reinterpret_cast<const char*>(palette_rgb), static_cast<size_t>(n_colors) * 3);
  if (width > 0 && height > 0)
    for (size_t i = 0; i < static_cast<size_t>(width) * static_cast<size_t>(height); ++i)
      if (index[i] >= n_colors) throw Error("PNG: palette index out of range");
  return encode_png(index, width, height, 1, 3, plte);
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
