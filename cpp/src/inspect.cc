// salt-ort-inspect prints what a C++ program sees of an ONNX model through
// ONNX Runtime's C++ API: each input and output with its element type and
// shape (dynamic dimensions by name), and the model's metadata_props.
//
// usage: salt-ort-inspect model.onnx
#include <onnxruntime_cxx_api.h>

#include <cstdio>
#include <string>
#include <vector>

namespace {

const char* ElementName(ONNXTensorElementDataType t) {
  switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return "float32";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: return "float64";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return "int64";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return "int32";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8: return "int8";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: return "uint8";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: return "bool";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return "float16";
    default: return "other";
  }
}

void PrintValue(const char* kind, const std::string& name, const Ort::TypeInfo& info) {
  auto tensor = info.GetTensorTypeAndShapeInfo();
  std::vector<int64_t> dims = tensor.GetShape();
  std::vector<const char*> symbolic(dims.size());
  tensor.GetSymbolicDimensions(symbolic.data(), symbolic.size());
  std::printf("%s %s %s [", kind, name.c_str(), ElementName(tensor.GetElementType()));
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i > 0) std::printf(", ");
    if (dims[i] >= 0) {
      std::printf("%lld", static_cast<long long>(dims[i]));
    } else {
      std::printf("%s", symbolic[i] && *symbolic[i] ? symbolic[i] : "?");
    }
  }
  std::printf("]\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s model.onnx\n", argv[0]);
    return 2;
  }
  try {
    Ort::Env env(ORT_LOGGING_LEVEL_WARNING, "salt-ort-inspect");
    Ort::SessionOptions options;
    options.SetIntraOpNumThreads(1);
    Ort::Session session(env, argv[1], options);
    Ort::AllocatorWithDefaultOptions alloc;
    for (size_t i = 0; i < session.GetInputCount(); ++i) {
      PrintValue("input", session.GetInputNameAllocated(i, alloc).get(), session.GetInputTypeInfo(i));
    }
    for (size_t i = 0; i < session.GetOutputCount(); ++i) {
      PrintValue("output", session.GetOutputNameAllocated(i, alloc).get(), session.GetOutputTypeInfo(i));
    }
    Ort::ModelMetadata meta = session.GetModelMetadata();
    std::printf("producer %s\n", meta.GetProducerNameAllocated(alloc).get());
    for (auto& key : meta.GetCustomMetadataMapKeysAllocated(alloc)) {
      auto value = meta.LookupCustomMetadataMapAllocated(key.get(), alloc);
      std::printf("metadata %s=%s\n", key.get(), value.get());
    }
  } catch (const Ort::Exception& e) {
    std::fprintf(stderr, "salt-ort-inspect: %s: %s\n", argv[1], e.what());
    return 1;
  }
  return 0;
}
