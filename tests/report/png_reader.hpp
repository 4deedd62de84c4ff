// An independent PNG / base64 reader for tests: checks the signature, every chunk's CRC, inflates
// IDAT and undoes the filters (8-bit RGB only). Throws std::runtime_error on anything wrong.
#pragma once
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace asdcap::test {

struct DecodedPng {
  int width = 0, height = 0;
  bool palette_type = false;
  std::vector<uint8_t> rgb;  // palette images are expanded to RGB
};

inline uint32_t be32(const std::string& s, size_t at) {
  if (at + 4 > s.size()) throw std::runtime_error("png: truncated");
  return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16) | (uint32_t(uint8_t(s[at + 2])) << 8) |
         uint32_t(uint8_t(s[at + 3]));
}

inline DecodedPng decode_png(const std::string& png) {
  if (png.compare(0, 8, std::string("\x89PNG\r\n\x1a\n", 8)) != 0) throw std::runtime_error("png: bad signature");
  DecodedPng out;
  std::string idat, palette;
  bool seen_end = false;
  for (size_t at = 8; at < png.size() && !seen_end;) {
    const uint32_t len = be32(png, at);
    if (at + 12 + len > png.size()) throw std::runtime_error("png: chunk runs past the end");
    const std::string type = png.substr(at + 4, 4);
    const uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(png.data() + at + 4), len + 4);
    if (crc != be32(png, at + 8 + len)) throw std::runtime_error("png: CRC mismatch in " + type);
    const std::string data = png.substr(at + 8, len);
    if (type == "IHDR") {
      out.width = int(be32(data, 0)), out.height = int(be32(data, 4));
      if (data[8] != 8 || (data[9] != 2 && data[9] != 3)) throw std::runtime_error("png: not 8-bit RGB or palette");
      out.palette_type = data[9] == 3;
    } else if (type == "PLTE") {
      if (len % 3 != 0 || len == 0 || len > 768) throw std::runtime_error("png: bad PLTE");
      palette.assign(data.begin(), data.end());
    } else if (type == "IDAT") {
      idat += data;
    } else if (type == "IEND") {
      seen_end = true;
    }
    at += 12 + len;
  }
  if (!seen_end || out.width <= 0 || out.height <= 0) throw std::runtime_error("png: missing IHDR or IEND");
  if (out.palette_type && palette.empty()) throw std::runtime_error("png: palette image without PLTE");
  const size_t bpp = out.palette_type ? 1 : 3;
  const size_t stride = size_t(out.width) * bpp;
  std::vector<uint8_t> raw((stride + 1) * size_t(out.height));
  uLongf n = raw.size();
  if (uncompress(raw.data(), &n, reinterpret_cast<const Bytef*>(idat.data()), idat.size()) != Z_OK || n != raw.size())
    throw std::runtime_error("png: IDAT does not inflate to the image size");
  out.rgb.resize(stride * size_t(out.height));
  for (int y = 0; y < out.height; ++y) {
    const uint8_t filter = raw[size_t(y) * (stride + 1)];
    const uint8_t* in = &raw[size_t(y) * (stride + 1) + 1];
    uint8_t* row = &out.rgb[size_t(y) * stride];
    const uint8_t* prev = y > 0 ? row - stride : nullptr;
    for (size_t i = 0; i < stride; ++i) {
      const int a = i >= bpp ? row[i - bpp] : 0, b = prev ? prev[i] : 0, c = (prev && i >= bpp) ? prev[i - bpp] : 0;
      int pred = 0;
      switch (filter) {
        case 0: pred = 0; break;
        case 1: pred = a; break;
        case 2: pred = b; break;
        case 3: pred = (a + b) / 2; break;
        case 4: {
          const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
          pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default: throw std::runtime_error("png: bad filter type");
      }
      row[i] = uint8_t(in[i] + pred);
    }
  }
  if (out.palette_type) {
    std::vector<uint8_t> rgb;
    rgb.reserve(out.rgb.size() * 3);
    for (uint8_t k : out.rgb) {
      if (size_t(k) * 3 + 2 >= palette.size()) throw std::runtime_error("png: palette index out of range");
      rgb.insert(rgb.end(), {uint8_t(palette[size_t(k) * 3]), uint8_t(palette[size_t(k) * 3 + 1]),
                             uint8_t(palette[size_t(k) * 3 + 2])});
    }
    out.rgb = std::move(rgb);
  }
  return out;
}

inline std::string base64_decode(const std::string& s) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (s.size() % 4 != 0) throw std::runtime_error("base64: length not a multiple of 4");
  std::string out;
  for (size_t i = 0; i < s.size(); i += 4) {
    int v[4];
    for (int k = 0; k < 4; ++k) {
      v[k] = s[i + size_t(k)] == '=' && i + 4 == s.size() && k >= 2 ? 0 : val(s[i + size_t(k)]);
      if (v[k] < 0) throw std::runtime_error("base64: bad character");
    }
    const uint32_t w = uint32_t(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
    out += char(w >> 16);
    if (s[i + 2] != '=') out += char((w >> 8) & 255);
    if (s[i + 3] != '=') out += char(w & 255);
  }
  return out;
}

}  // namespace asdcap::test

namespace asdcap::test {

// The values of every `attr="..."` inside tags starting with `tag` (e.g. "<img "), in page order.
// (std::regex overflows the stack on megabyte-long data: URIs, hence by hand.)
inline std::vector<std::string> tag_attributes(const std::string& html, const std::string& tag,
                                               const std::string& attr) {
  std::vector<std::string> out;
  for (size_t at = html.find(tag); at != std::string::npos; at = html.find(tag, at + 1)) {
    const size_t end = html.find('>', at);
    const size_t a = html.find(" " + attr + "=\"", at);
    if (a == std::string::npos || a > end) {
      out.emplace_back();
      continue;
    }
    const size_t v = a + attr.size() + 3;
    out.push_back(html.substr(v, html.find('"', v) - v));
  }
  return out;
}

}  // namespace asdcap::test
