// A minimal PNG encoder (8-bit RGB, zlib deflate) for the report's spectrogram images.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace asdcap {

// `rgb` holds width*height*3 bytes, rows top to bottom. Returns the bytes of a PNG file.
// Throws Error on a zero or oversized dimension.
std::string encode_png_rgb(const uint8_t* rgb, int width, int height);

// Palette image: `index` holds width*height entries into `palette_rgb` (n_colors x 3 bytes,
// 1..256 colours). A third of the size of the RGB form for spectrograms.
std::string encode_png_indexed(const uint8_t* index, int width, int height, const uint8_t* palette_rgb, int n_colors);

// Standard base64 (RFC 4648, with padding), and the data: URI of some bytes.
std::string base64_encode(std::string_view bytes);
std::string data_uri(std::string_view mime, std::string_view bytes);

}  // namespace asdcap
