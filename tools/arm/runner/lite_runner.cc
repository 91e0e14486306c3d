// Static command-line runner for Paddle Lite .nb bundles, used to check ARM bundles on ARM kernels
// (under qemu-aarch64-static in CI, or on a board). It needs no Python and no sysroot.
//
//   lite_runner MODEL.nb OUT_DIR [--threads N] [--power-mode M] [--repeat R] NAME=IN.npy ...
//
// Each input is fed by name (a bare IN.npy is fed by position); output i is written as OUT_DIR/out<i>.npy.
// Prints one JSON line: {"outputs": [...shapes...], "run_ms": [...]}.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "paddle_api.h"

using paddle::lite_api::MobileConfig;
using paddle::lite_api::PaddlePredictor;
using paddle::lite_api::PowerMode;
using paddle::lite_api::PrecisionType;

namespace {

struct Array {
  std::string descr;  // numpy dtype string, e.g. "<f4"
  std::vector<int64_t> shape;
  std::vector<char> bytes;
};

[[noreturn]] void Fail(const std::string& message) {
  std::cerr << "lite_runner: " << message << std::endl;
  std::exit(2);
}

std::string HeaderValue(const std::string& header, const std::string& key) {
  size_t at = header.find("'" + key + "'");
  if (at == std::string::npos) Fail("npy header lacks " + key);
  at = header.find(':', at) + 1;
  while (header[at] == ' ') ++at;
  char close = header[at] == '(' ? ')' : (header[at] == '\'' ? '\'' : ',');
  size_t end = header.find(close, at + 1);
  return header.substr(at, end - at + 1);
}

Array ReadNpy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail("cannot open " + path);
  char magic[8];
  in.read(magic, 8);
  if (!in || std::memcmp(magic, "\x93NUMPY", 6) != 0) Fail(path + " is not a .npy file");
  uint32_t header_len = 0;
  if (magic[6] == 1) {
    uint16_t len16 = 0;
    in.read(reinterpret_cast<char*>(&len16), 2);
    header_len = len16;
  } else {
    in.read(reinterpret_cast<char*>(&header_len), 4);
  }
  std::string header(header_len, ' ');
  in.read(&header[0], header_len);
  Array array;
  std::string descr = HeaderValue(header, "descr");
  array.descr = descr.substr(1, descr.size() - 2);
  if (HeaderValue(header, "fortran_order").find("True") != std::string::npos) Fail(path + ": fortran order");
  std::string shape = HeaderValue(header, "shape");
  int64_t count = 1;
  for (size_t i = 1; i < shape.size();) {
    size_t next = shape.find_first_of(",)", i);
    std::string item = shape.substr(i, next - i);
    if (item.find_first_of("0123456789") != std::string::npos) {
      array.shape.push_back(std::stoll(item));
      count *= array.shape.back();
    }
    i = next + 1;
  }
  size_t item_size = std::stoul(array.descr.substr(2));
  array.bytes.resize(count * item_size);
  in.read(array.bytes.data(), array.bytes.size());
  if (!in) Fail(path + " is truncated");
  return array;
}

void WriteNpy(const std::string& path, const std::string& descr, const std::vector<int64_t>& shape,
              const void* data, size_t nbytes) {
  std::ostringstream dict;
  dict << "{'descr': '" << descr << "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < shape.size(); ++i) dict << shape[i] << (shape.size() == 1 ? "," : (i + 1 < shape.size() ? ", " : ""));
  dict << "), }";
  std::string header = dict.str();
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::ofstream out(path, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  uint16_t len = static_cast<uint16_t>(header.size());
  out.write(reinterpret_cast<const char*>(&len), 2);
  out.write(header.data(), header.size());
  out.write(static_cast<const char*>(data), nbytes);
  if (!out) Fail("cannot write " + path);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) Fail("usage: lite_runner MODEL.nb OUT_DIR [--threads N] [--power-mode M] [--repeat R] IN.npy...");
  std::string model = argv[1], out_dir = argv[2];
  int threads = 1, power_mode = 3 /* LITE_POWER_NO_BIND */, repeat = 1;
  std::vector<std::string> inputs;
  for (int i = 3; i < argc; ++i) {
    std::string arg = argv[i];
    if ((arg == "--threads" || arg == "--power-mode" || arg == "--repeat") && i + 1 < argc) {
      int value = std::atoi(argv[++i]);
      (arg == "--threads" ? threads : arg == "--power-mode" ? power_mode : repeat) = value;
    } else {
      inputs.push_back(arg);
    }
  }
  MobileConfig config;
  config.set_model_from_file(model);
  config.set_threads(threads);
  config.set_power_mode(static_cast<PowerMode>(power_mode));
  std::shared_ptr<PaddlePredictor> predictor = paddle::lite_api::CreatePaddlePredictor<MobileConfig>(config);

  std::vector<Array> arrays;
  for (const std::string& input : inputs) {
    size_t eq = input.find('=');
    arrays.push_back(ReadNpy(eq == std::string::npos ? input : input.substr(eq + 1)));
  }
  for (size_t i = 0; i < arrays.size(); ++i) {
    size_t eq = inputs[i].find('=');
    auto tensor = eq == std::string::npos ? predictor->GetInput(static_cast<int>(i))
                                          : predictor->GetInputByName(inputs[i].substr(0, eq));
    tensor->Resize(arrays[i].shape);
    const std::string& d = arrays[i].descr;
    void* dst = d == "<f4" ? static_cast<void*>(tensor->mutable_data<float>())
              : d == "<i4" ? static_cast<void*>(tensor->mutable_data<int32_t>())
              : d == "<i8" ? static_cast<void*>(tensor->mutable_data<int64_t>())
              : nullptr;
    if (dst == nullptr) Fail("unsupported input dtype " + d + " (float32, int32, int64)");
    std::memcpy(dst, arrays[i].bytes.data(), arrays[i].bytes.size());
  }

  std::vector<double> run_ms;
  for (int r = 0; r < repeat; ++r) {
    auto start = std::chrono::steady_clock::now();
    predictor->Run();
    run_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }

  std::ostringstream json;
  json << "{\"version\": \"" << predictor->GetVersion() << "\", \"outputs\": [";
  size_t count = predictor->GetOutputNames().size();
  for (size_t i = 0; i < count; ++i) {
    auto tensor = predictor->GetOutput(static_cast<int>(i));
    std::vector<int64_t> shape = tensor->shape();
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    std::string path = out_dir + "/out" + std::to_string(i) + ".npy";
    switch (tensor->precision()) {
      case PrecisionType::kFloat: WriteNpy(path, "<f4", shape, tensor->data<float>(), n * 4); break;
      case PrecisionType::kInt32: WriteNpy(path, "<i4", shape, tensor->data<int32_t>(), n * 4); break;
      case PrecisionType::kInt64: WriteNpy(path, "<i8", shape, tensor->data<int64_t>(), n * 8); break;
      case PrecisionType::kBool: WriteNpy(path, "|b1", shape, tensor->data<bool>(), n); break;
      default: Fail("unsupported output precision for output " + std::to_string(i));
    }
    json << (i ? ", " : "") << "[";
    for (size_t k = 0; k < shape.size(); ++k) json << (k ? ", " : "") << shape[k];
    json << "]";
  }
  json << "], \"run_ms\": [";
  for (size_t r = 0; r < run_ms.size(); ++r) json << (r ? ", " : "") << run_ms[r];
  json << "]}";
  std::cout << json.str() << std::endl;
  return 0;
}
