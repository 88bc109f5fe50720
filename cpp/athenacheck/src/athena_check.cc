// salt-ort-athena-check opens an exported ONNX model the way ATLAS's
// flavour-tagging loaders in Athena open it, applies the rules both of
// their paths apply to the model's gnn_config metadata and to its inputs
// and outputs, then runs it as they run it.
//
// usage: salt-ort-athena-check model.onnx
//
// It prints a JSON report on stdout:
//
//   {"model": ..., "session": {...}, "onnx_model_version": ..., "model_name": ...,
//    "pass": bool,
//    "rules": [{"name", "ok", "advisory", "source", "detail"}, ...],
//    "runs": [{"constituents", "shapes", "ok", "detail"}, ...]}
//
// and exits with 0 if every rule (but the advisory ones) and every run
// passes, 1 if one fails, 2 if the model cannot be opened (or on a usage
// error), with a message on stderr and no report.
//
// The two loader paths, both in the athena repository under
// PhysicsAnalysis/JetTagging/ (each rule's "source" names the file and
// function it comes from):
//
//   - the current one, FlavorTagInference: SaltModel reads gnn_config with
//     nlohmann::json, SaltModelGraphConfig::parse_json_graph its inputs,
//     GNNDataLoader and ConstituentsLoader build the ONNX inputs, GNN
//     decorates the jet;
//   - the older one, FlavorTagDiscriminants: OnnxUtil reads gnn_config
//     and hands it to lwtnn's parse_json_graph (boost::property_tree),
//     DataPrepUtilities and ConstituentsLoader configure the inputs, GNN
//     builds and decorates.
//
// The name tables below (regular expressions, custom getters) are the
// loaders' as of the revisions read for this program; the loaders match
// them with std::regex_match (the whole name, ECMAScript syntax), as this
// program does. Revisions read (athena commit of each file):
//
//   FlavorTagInference/Root/SaltModel.cxx              28f530dcbe11
//   FlavorTagInference/FlavorTagInference/SaltModel.h  628ac7bea1bf
//   FlavorTagInference/Root/SaltModelGraphConfig.cxx   446634e2e519
//   FlavorTagInference/Root/SaltModelOutput.cxx        7bbb05f44167
//   FlavorTagInference/Root/GNNDataLoader.cxx          204345a88970
//   FlavorTagInference/FlavorTagInference/SaltModelEDMLoaderBase.h  2495ad6ec478
//   FlavorTagInference/Root/ConstituentsLoader.cxx     eb7765ef44b7
//   FlavorTagInference/Root/DataPrepUtilities.cxx      2495ad6ec478
//   FlavorTagInference/FlavorTagInference/StringUtils.h  3f3ef20357f7
//   FlavorTagInference/Root/CustomGetterUtils.cxx      218f95b84cde
//   FlavorTagInference/Root/GNN.cxx                    b176f0a5f47e
//   FlavorTagDiscriminants/Root/OnnxUtil.cxx           4cd73a18c7b9
//   FlavorTagDiscriminants/Root/OnnxOutput.cxx         60d339f8a217
//   FlavorTagDiscriminants/Root/DataPrepUtilities.cxx  1efad706e54e
//   FlavorTagDiscriminants/Root/ConstituentsLoader.cxx 0c1538ec41bb
//   FlavorTagDiscriminants/Root/GNN.cxx                001d604b18a1
//   lwtnn src/parse_json.cxx                           4e26705 (lwtnn)
//
// The output and run rules follow onnx_model_version v1, the layout Salt
// and salt-ort export.
#include <onnxruntime_cxx_api.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

constexpr int kExitPass = 0;
constexpr int kExitFail = 1;
constexpr int kExitCannotCheck = 2;

// ---------------------------------------------------------------------------
// Where the rules come from, relative to PhysicsAnalysis/JetTagging/.

constexpr char kSaltModel[] = "FlavorTagInference/Root/SaltModel.cxx";
constexpr char kSaltModelH[] = "FlavorTagInference/FlavorTagInference/SaltModel.h";
constexpr char kSaltGraphConfig[] = "FlavorTagInference/Root/SaltModelGraphConfig.cxx";
constexpr char kSaltOutput[] = "FlavorTagInference/Root/SaltModelOutput.cxx";
constexpr char kDataLoader[] = "FlavorTagInference/Root/GNNDataLoader.cxx";
constexpr char kEDMLoaderBase[] = "FlavorTagInference/FlavorTagInference/SaltModelEDMLoaderBase.h";
constexpr char kConstituents[] = "FlavorTagInference/Root/ConstituentsLoader.cxx";
constexpr char kDataPrep[] = "FlavorTagInference/Root/DataPrepUtilities.cxx";
constexpr char kGetters[] = "FlavorTagInference/Root/CustomGetterUtils.cxx";
constexpr char kStringUtils[] = "FlavorTagInference/FlavorTagInference/StringUtils.h";
constexpr char kGNN[] = "FlavorTagInference/Root/GNN.cxx";
constexpr char kOnnxUtil[] = "FlavorTagDiscriminants/Root/OnnxUtil.cxx";
constexpr char kOnnxOutput[] = "FlavorTagDiscriminants/Root/OnnxOutput.cxx";
constexpr char kOldConstituents[] = "FlavorTagDiscriminants/Root/ConstituentsLoader.cxx";
constexpr char kOldDataPrep[] = "FlavorTagDiscriminants/Root/DataPrepUtilities.cxx";
constexpr char kOldGNN[] = "FlavorTagDiscriminants/Root/GNN.cxx";
constexpr char kLwtnn[] = "lwtnn src/parse_json.cxx";

// Source joins "file: function" citations.
std::string Source(std::initializer_list<std::pair<const char*, const char*>> refs) {
  std::string out;
  for (const auto& [file, function] : refs) {
    if (!out.empty()) out += "; ";
    out += std::string(file) + ": " + function;
  }
  return out;
}

std::string Join(const std::vector<std::string>& parts, const char* sep = ", ") {
  std::string out;
  for (const std::string& p : parts) {
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

std::string Quote(const std::string& s) { return "'" + s + "'"; }

// ---------------------------------------------------------------------------
// Findings.

// Finding is the outcome of one rule.
struct Finding {
  std::string name;
  bool ok = false;
  // An advisory rule matters only in some loader configurations; its
  // failure does not fail the check.
  bool advisory = false;
  std::string source;
  std::string detail;
};

// Findings collects the rules' outcomes in the order they were checked.
class Findings {
 public:
  // Add records a rule: it passes when problems is empty; detail then
  // says what was found, else the problems do.
  void Add(const std::string& name, const std::string& source, const std::vector<std::string>& problems,
           const std::string& detail, bool advisory = false) {
    findings_.push_back({name, problems.empty(), advisory, source, problems.empty() ? detail : Join(problems, "; ")});
  }

  // NotChecked records a rule that could not be checked because another
  // failed; it counts as failed.
  void NotChecked(const std::string& name, const std::string& source, const std::string& because) {
    findings_.push_back({name, false, false, source, "not checked: " + because});
  }

  bool Pass() const {
    return std::all_of(findings_.begin(), findings_.end(), [](const Finding& f) { return f.ok || f.advisory; });
  }

  OrderedJson ToJson() const {
    OrderedJson out = OrderedJson::array();
    for (const Finding& f : findings_) {
      out.push_back({{"name", f.name}, {"ok", f.ok}, {"advisory", f.advisory}, {"source", f.source}, {"detail", f.detail}});
    }
    return out;
  }

 private:
  std::vector<Finding> findings_;
};

// ---------------------------------------------------------------------------
// The model as ONNX Runtime sees it.

// Port is one input or output of the graph.
struct Port {
  std::string name;
  bool tensor = false;
  ONNXTensorElementDataType type = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  std::vector<int64_t> shape;  // -1 for a dynamic dimension
};

std::string TypeName(ONNXTensorElementDataType t) {
  switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return "float32";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: return "float64";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return "float16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16: return "bfloat16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8: return "int8";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: return "uint8";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16: return "int16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return "int32";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return "int64";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: return "bool";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING: return "string";
    default: return "element type " + std::to_string(static_cast<int>(t));
  }
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ", ";
    out += shape[i] < 0 ? std::string("?") : std::to_string(shape[i]);
  }
  return out + "]";
}

std::string Describe(const Port& p) {
  if (!p.tensor) return p.name + " (not a tensor)";
  return p.name + " " + TypeName(p.type) + " " + ShapeString(p.shape);
}

Port ReadPort(const std::string& name, const Ort::TypeInfo& info) {
  Port p;
  p.name = name;
  p.tensor = info.GetONNXType() == ONNX_TYPE_TENSOR;
  if (p.tensor) {
    auto tensor = info.GetTensorTypeAndShapeInfo();
    p.type = tensor.GetElementType();
    p.shape = tensor.GetShape();
  }
  return p;
}

// Graph is what the session says of the model.
struct Graph {
  std::vector<Port> inputs, outputs;
  std::optional<std::string> gnn_config;
};

Graph ReadGraph(const Ort::Session& session) {
  Graph g;
  Ort::AllocatorWithDefaultOptions alloc;
  for (std::size_t i = 0; i < session.GetInputCount(); ++i) {
    g.inputs.push_back(ReadPort(session.GetInputNameAllocated(i, alloc).get(), session.GetInputTypeInfo(i)));
  }
  for (std::size_t i = 0; i < session.GetOutputCount(); ++i) {
    g.outputs.push_back(ReadPort(session.GetOutputNameAllocated(i, alloc).get(), session.GetOutputTypeInfo(i)));
  }
  Ort::ModelMetadata meta = session.GetModelMetadata();
  Ort::AllocatedStringPtr config = meta.LookupCustomMetadataMapAllocated("gnn_config", alloc);
  if (config) g.gnn_config = std::string(config.get());
  return g;
}

// ---------------------------------------------------------------------------
// The loaders' name tables.

// Pattern is one entry of a loader's table of variable types: a regular
// expression for the whole name and whether the loader computes the
// variable with a custom getter (rather than reading it from the EDM).
struct Pattern {
  const char* regex;
  bool custom;
};

template <std::size_t N>
std::vector<Pattern> Patterns(const Pattern (&p)[N]) {
  return std::vector<Pattern>(p, p + N);
}

bool Matches(const char* regex, const std::string& name) { return std::regex_match(name, std::regex(regex)); }

// FirstMatch is str::match_first: the first pattern matching name, or
// none (where match_first throws std::logic_error).
std::optional<Pattern> FirstMatch(const std::vector<Pattern>& table, const std::string& name) {
  for (const Pattern& p : table) {
    if (Matches(p.regex, name)) return p;
  }
  return std::nullopt;
}

template <std::size_t N>
const char* FirstMatch(const char* const (&regexes)[N], const std::string& name) {
  for (const char* re : regexes) {
    if (Matches(re, name)) return re;
  }
  return nullptr;
}

template <std::size_t N>
bool Contains(const char* const (&names)[N], const std::string& name) {
  return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

// Jet variables: dataprep::createGetterConfig's type and default-flag
// tables, the same in both loaders' DataPrepUtilities.cxx. Every jet
// variable must match both (str::match_first, str::sub_first).
constexpr Pattern kJetTypes[] = {
    {".*_isDefaults", false},
    {"IP[23]D(Neg)?_[pbc](b|c|u|tau)", false},
    {"SV1(Flip)?_[pbc](b|c|u|tau)", false},
    {"(rnnip|iprnn|(?:dips|DIPS)[^_]*)(flip)?_p(b|c|u|tau)", false},
    {"(JetFitter|SV1|JetFitterSecondaryVertex)(Flip)?_[Nn].*", false},
    {"(JetFitter|SV1|JetFitterSecondaryVertex).*", false},
    {"(log_)?pt|abs_eta|eta|phi|energy|mass", true},
    {"softMuon_p[bcu]", false},
    {"softMuon_.*", false},
};
constexpr const char* kJetDefaultFlags[] = {
    "IP2D_.*", "IP2DNeg_.*", "IP3D_.*", "IP3DNeg_.*", "SV1_.*", "SV1Flip_.*", "JetFitter_.*", "JetFitterFlip_.*",
    "JetFitterSecondaryVertex_.*", "JetFitterSecondaryVertexFlip_.*", "rnnip_.*", "((?:dips|DIPS)[^_]*)_.*",
    "rnnipflip_.*", "iprnn_.*", "smt_.*", "softMuon_.*", "((log_)?pt|abs_eta|eta|phi|energy|mass)",
};
// The jet variables CustomGetterUtils.cxx's customJetGetter computes.
constexpr const char* kJetGetters[] = {"pt", "log_pt", "eta", "abs_eta", "energy", "mass", "phi"};

// Constituent variables: createConstituentsLoaderConfig's type tables.
constexpr Pattern kTrackTypes[] = {
    {"numberOf.*21p9", true},
    {"numberOf.*", false},
    {"btagIp_(d0|z0SinTheta)Uncertainty", false},
    {"(numberDoF|chiSquared|qOverP|theta)", false},
    {"(^.*[_])?(d|z)0.*", true},
    {"(log_)?(ptfrac|dr|pt).*", true},
    {"(deta|dphi)", true},
    {"phi|theta|qOverP", false},
    {"(phi|theta|qOverP)Uncertainty", true},
    {"(leptonID|muon_quality)", false},
    {"(pT_wrtJet|pZ_wrtJet|EFrac_wrtJet).*", true},
    {"muon_(qOverPratio|momentumBalanceSignificance|scatteringNeighbourSignificance)", false},
    {"lifetimeSigned.*", true},
};
constexpr Pattern kOldTrackTypes[] = {
    {"numberOf.*21p9", true},
    {"numberOf.*", false},
    {"btagIp_(d0|z0SinTheta)Uncertainty", false},
    {"(numberDoF|chiSquared|qOverP|theta)", false},
    {"(^.*[_])?(d|z)0.*", true},
    {"(log_)?(ptfrac|dr|pt).*", true},
    {"(deta|dphi)", true},
    {"phi|theta|qOverP", false},
    {"(phi|theta|qOverP)Uncertainty", true},
    {"leptonID", false},
};
constexpr Pattern kFlowTypes[] = {{"(pt|deta|dphi|dr|energy|isCharged)", true}};
constexpr Pattern kOldFlowTypes[] = {{"(pt|deta|dphi|dr|energy)", true}};
constexpr Pattern kHitTypes[] = {
    {"(j|a|b)", true},
    {"(deta|dphi|radius_local)", true},
    {"(splitProbability1|splitProbability2)", true},
};
constexpr Pattern kOldHitTypes[] = {{"(j|a|b)", true}};
constexpr Pattern kElectronTypes[] = {
    {"(deltaEta1|deltaPhiRescaled2|Rhad|Rhad1|Eratio|weta2|Rphi|Reta|wtots1|f1|f3|pt|eta|phi)", false},
    {"(ftag_.*|ptfrac|ptrel|dr|et|deltaPOverP|ptVarCone30OverPt|energyOverP)", true},
    {"(numberOf.*|d0.*|abs_eta|qOverP|eProbabilityHT)", true},
};

// Track sequences are named tracks_<selection>_<sort order>.
constexpr const char* kTrackSortOrders[] = {".*absSd0sort", ".*sd0sort", ".*ptsort", ".*absD0DescendingSort"};
constexpr const char* kTrackSelections[] = {
    ".*_ip3d_.*",           ".*_dipsTightUpgrade_.*", ".*_dipsLooseUpgrade_.*", ".*_all_.*",
    ".*_dipsLoose202102_.*", ".*_loose202102NoIpCuts_.*", ".*_r22default_.*",   ".*_r22loose_.*",
};
constexpr const char* kElectronSelections[] = {".*_r22default.*"};

// The custom getters of CustomGetterUtils.cxx's buildCustomSeqGetter.
constexpr const char* kTrackIpGetters[] = {
    "IP3D_signed_d0_significance", "lifetimeSignedD0Significance", "IP3D_signed_z0_significance",
    "lifetimeSignedZ0SinThetaSignificance", "IP2D_signed_d0", "IP3D_signed_d0", "lifetimeSignedD0",
    "IP3D_signed_z0", "lifetimeSignedZ0SinTheta", "d0", "btagIp_d0", "z0SinTheta", "btagIp_z0SinTheta",
    "d0Uncertainty", "z0SinThetaUncertainty",
};
constexpr const char* kTrackGetters[] = {
    "eProbabilityHT", "qOverP", "phiUncertainty", "thetaUncertainty", "thetaVariance", "qOverPUncertainty",
    "z0RelativeToBeamspot", "z0SinThetaRelativeToBeamspot", "d0RelativeToBeamspot",
    "d0RelativeToBeamspotVariance", "d0RelativeToBeamspotSignificance", "log_z0RelativeToBeamspotUncertainty",
    "z0RelativeToBeamspotUncertainty", "numberOfPixelHitsInclDead", "numberOfSCTHitsInclDead",
    "numberOfInnermostPixelLayerHits21p9", "numberOfNextToInnermostPixelLayerHits21p9",
    "numberOfInnermostPixelLayerSharedHits21p9", "numberOfInnermostPixelLayerSplitHits21p9",
};
constexpr const char* kParticleGetters[] = {
    "pt",  "log_pt", "ptfrac", "log_ptfrac", "ptrel",  "eta",            "abs_eta", "deta",
    "abs_deta", "phi", "dphi", "dr", "log_dr", "log_dr_nansafe", "mass", "energy",
};
constexpr const char* kFlowGetters[] = {"isCharged"};
constexpr const char* kElectronGetters[] = {
    "ftag_ptVarCone30OverPt", "ptVarCone30OverPt", "ftag_et", "et", "ftag_deltaPOverP",
    "deltaPOverP", "ftag_energyOverP", "energyOverP",
};

// The names dataprep::getNameFlippers renames decorations with in flip
// configurations (str::sub_first throws for a name matching none).
constexpr const char* kFlipNames[] = {
    "(GN1[^_]*|GN2[^_]*|GN3[^_]*)", "(GN1[^_]*|GN2[^_]*|GN3[^_]*)_(.*)", "(IP[23]D)_(.*)",
    "(rnnip|(?:dips|DIPS)[^_]*)_(.*)", "(JetFitter|SV1|JetFitterSecondaryVertex)_(.*)",
    "(rnnip|(?:dips|DIPS)[^_]*)", "^(DL1|DL1r[^_]*|DL1rmu|DL1d[^_]*)$", "pt|abs_eta|eta", "softMuon.*|smt.*",
};
constexpr const char* kOldFlipNames[] = {
    "(GN1[^_]*|GN2[^_]*)", "(GN1[^_]*|GN2[^_]*)_(.*)", "(IP[23]D)_(.*)", "(rnnip|(?:dips|DIPS)[^_]*)_(.*)",
    "(JetFitter|SV1|JetFitterSecondaryVertex)_(.*)", "(rnnip|(?:dips|DIPS)[^_]*)",
    "^(DL1|DL1r[^_]*|DL1rmu|DL1d[^_]*)$", "pt|abs_eta|eta", "softMuon.*|smt.*",
};

// lwtnn's parse_json.cxx: node types (and the key a node of each type
// needs besides sources) and layer architectures.
struct NodeType {
  const char* type;
  const char* key;  // the integer a node of the type needs, or nullptr
};
constexpr NodeType kLwtnnNodeTypes[] = {
    {"input", "size"},           {"input_sequence", "size"},          {"feed_forward", "layer_index"},
    {"sequence", "layer_index"}, {"time_distributed", "layer_index"}, {"concatenate", nullptr},
    {"add", nullptr},            {"sum", nullptr},
};
constexpr const char* kLwtnnArchitectures[] = {"dense", "normalization", "highway", "maxout", "lstm",
                                               "gru",   "simplernn",     "conv1d",  "embedding"};

// ---------------------------------------------------------------------------
// Sequences.

// Kind is a constituent type of the loaders.
enum class Kind { kTracks, kFlows, kHits, kElectrons };

struct KindInfo {
  Kind kind;
  const char* word;      // the word a sequence name contains
  const char* input_v1;  // the ONNX input name for v0 and v1
  const char* input_v2;  // for v2
  std::vector<Pattern> types;      // the current loader's type table
  std::vector<Pattern> old_types;  // the older loader's; empty: it rejects the kind
};

// Kinds returns the constituent types in the order
// createConstituentsLoaderConfig tries them.
const std::vector<KindInfo>& Kinds() {
  static const std::vector<KindInfo> kinds = {
      {Kind::kTracks, "tracks", "track_features", "tracks", Patterns(kTrackTypes), Patterns(kOldTrackTypes)},
      {Kind::kFlows, "flows", "flow_features", "flows", Patterns(kFlowTypes), Patterns(kOldFlowTypes)},
      {Kind::kHits, "hits", "hit_features", "hits", Patterns(kHitTypes), Patterns(kOldHitTypes)},
      {Kind::kElectrons, "electrons", "electron_features", "electrons", Patterns(kElectronTypes), {}},
  };
  return kinds;
}

// KindOf is the kind createConstituentsLoaderConfig gives a sequence
// name: the first whose word the name contains.
const KindInfo* KindOf(const std::string& sequence) {
  for (const KindInfo& k : Kinds()) {
    if (sequence.find(k.word) != std::string::npos) return &k;
  }
  return nullptr;
}

// VariableName is the name the loaders match against the type table: flow
// variables lose everything up to "flow_" (get_flow_input_config).
std::string VariableName(const KindInfo& k, const std::string& name) {
  if (k.kind != Kind::kFlows) return name;
  const std::size_t pos = name.find("flow_");
  return pos == std::string::npos ? name : name.substr(pos + 5);
}

// HasGetter reports whether buildCustomSeqGetter has a custom getter for a
// variable of kind k; hit getters are not known to this program.
bool HasGetter(const KindInfo& k, const std::string& name) {
  const bool track_like = Contains(kTrackIpGetters, name) || Contains(kTrackGetters, name) || Matches("numberOf.*", name);
  switch (k.kind) {
    case Kind::kTracks: return track_like || Contains(kParticleGetters, name);
    case Kind::kFlows: return Contains(kFlowGetters, name) || Contains(kParticleGetters, name);
    case Kind::kElectrons: return Contains(kElectronGetters, name) || track_like || Contains(kParticleGetters, name);
    case Kind::kHits: return true;
  }
  return false;
}

// ---------------------------------------------------------------------------
// gnn_config.

enum class Version { kUnknown, kV0, kV1, kV2 };

const char* VersionName(Version v) {
  switch (v) {
    case Version::kV0: return "v0";
    case Version::kV1: return "v1";
    case Version::kV2: return "v2";
    case Version::kUnknown: break;
  }
  return "unknown";
}

// Node is an entry of inputs or input_sequences.
struct Node {
  std::string name;
  std::vector<std::string> variables;
};

// Config is what the checks learn of gnn_config.
struct Config {
  bool object = false;  // gnn_config is a JSON object
  Json json;
  Version version = Version::kUnknown;
  // Read as SaltModelGraphConfig::parse_json_graph reads them; valid only
  // when nodes_ok.
  bool nodes_ok = false;
  std::vector<Node> inputs, sequences;
};

// JsonType names j's JSON type with its article: "an array", "a string".
std::string JsonType(const Json& j) {
  const std::string name = j.type_name();
  return (name == "array" || name == "object" ? "an " : "a ") + name;
}

// ReadNode reads one input node with the calls get_input_node makes, so
// that it throws where the current loader throws, and adds to problems
// what the loaders accept but the exported layout forbids.
Node ReadNode(const Json& node, const std::string& where, std::vector<std::string>& problems) {
  Node out;
  out.name = node.at("name").get<std::string>();
  const Json& variables = node.at("variables");
  if (!variables.is_array()) {
    problems.push_back(where + " " + Quote(out.name) + ": variables is " + JsonType(variables) + ", not an array");
  }
  for (const Json& var : variables) {
    const std::string name = var.at("name").get<std::string>();
    const double offset = var.at("offset").get<double>();
    const double scale = var.at("scale").get<double>();
    if (var.contains("default")) {
      const double def = var.at("default").get<double>();
      if (!std::isfinite(def)) problems.push_back(where + " " + Quote(out.name) + " " + Quote(name) + ": default is not finite");
    }
    if (!std::isfinite(offset) || !std::isfinite(scale)) {
      problems.push_back(where + " " + Quote(out.name) + " " + Quote(name) + ": offset or scale is not finite");
    }
    out.variables.push_back(name);
  }
  return out;
}

// ---------------------------------------------------------------------------
// The checks.

// Named lists rules and their sources.
using Named = std::vector<std::pair<std::string, std::string>>;

class Checker {
 public:
  Checker(const Graph& graph, Findings& findings) : graph_(graph), f_(findings) {}

  // Run applies every rule, in the order the loaders meet them.
  void Run() {
    CheckConfigPresent();
    CheckVersion();
    CheckOutputNames();
    CheckOutputTypes();
    CheckInputsSchema();
    CheckOutputsSchema();
    CheckLwtnn();
    CheckJetVariables();
    CheckSequences();
    CheckOnnxInputs();
    CheckTracks();
    CheckFlipNames();
  }

  const Config& config() const { return config_; }
  const std::string& model_name() const { return model_name_; }

  // LoaderInputs returns what GNNDataLoader builds per jet: input name →
  // (constituent sequence?, number of variables); empty when gnn_config
  // cannot tell.
  std::map<std::string, std::pair<bool, std::size_t>> LoaderInputs() const {
    std::map<std::string, std::pair<bool, std::size_t>> out;
    if (!config_.nodes_ok) return out;
    out[JetInputName()] = {false, config_.inputs.empty() ? 0 : config_.inputs.front().variables.size()};
    std::set<Kind> seen;
    for (const Node& s : config_.sequences) {
      const KindInfo* k = KindOf(s.name);
      // A second sequence of a kind maps to the same input, which
      // addVectorLoader's try_emplace drops.
      if (k == nullptr || !seen.insert(k->kind).second) continue;
      out[InputName(*k)] = {true, s.variables.size()};
    }
    return out;
  }

 private:
  bool V2() const { return config_.version == Version::kV2; }
  std::string JetInputName() const { return V2() ? "jets" : "jet_features"; }
  std::string InputName(const KindInfo& k) const { return V2() ? k.input_v2 : k.input_v1; }

  bool HasPerConstituentOutputs() const {
    return std::any_of(graph_.outputs.begin(), graph_.outputs.end(),
                       [](const Port& p) { return p.tensor && p.shape.size() == 1; });
  }

  void CheckConfigPresent() {
    const std::string src = Source({{kSaltModel, "SaltModel::loadMetadata"}, {kOnnxUtil, "OnnxUtil::loadMetadata"}});
    if (!graph_.gnn_config) {
      f_.Add("gnn_config_present", src,
             {"the model has no gnn_config metadata: LookupCustomMetadataMapAllocated returns null, from which "
              "both loaders construct a std::string"},
             "");
      f_.NotChecked("gnn_config_json", src, "no gnn_config");
      return;
    }
    f_.Add("gnn_config_present", src, {}, "gnn_config holds " + std::to_string(graph_.gnn_config->size()) + " bytes");
    std::vector<std::string> problems;
    try {
      config_.json = Json::parse(*graph_.gnn_config);
      if (!config_.json.is_object()) {
        problems.push_back("gnn_config is " + JsonType(config_.json) + ", not a JSON object");
      }
    } catch (const std::exception& e) {
      problems.push_back(std::string("nlohmann::json::parse throws: ") + e.what());
    }
    config_.object = problems.empty();
    f_.Add("gnn_config_json", src, problems, "gnn_config is a JSON object");
  }

  void CheckVersion() {
    const std::string src = Source({{kSaltModel, "SaltModel::SaltModel"},
                                    {kSaltModelH, "NLOHMANN_JSON_SERIALIZE_ENUM(SaltModelVersion)"},
                                    {kOnnxUtil, "OnnxUtil::OnnxUtil"}});
    const std::string decorate_src = Source({{kGNN, "GNN::decorate"}, {kOldGNN, "GNN::decorate"}});
    if (!config_.object) {
      f_.NotChecked("onnx_model_version", src, "gnn_config is not a JSON object");
      f_.NotChecked("decorate_version", decorate_src, "gnn_config is not a JSON object");
      return;
    }
    std::vector<std::string> problems;
    std::string detail;
    const Json& j = config_.json;
    if (j.contains("onnx_model_version")) {
      // The enum's JSON conversion maps any other value, strings of other
      // versions and non-strings alike, to UNKNOWN, which both throw on.
      const Json& v = j.at("onnx_model_version");
      for (Version candidate : {Version::kV0, Version::kV1, Version::kV2}) {
        if (v == Json(VersionName(candidate))) config_.version = candidate;
      }
      if (config_.version == Version::kUnknown) {
        problems.push_back("onnx_model_version is " + v.dump() +
                           ", which the loaders read as UNKNOWN and throw on (\"Unknown Onnx model version!\"); "
                           "want \"v0\", \"v1\" or \"v2\"");
      }
      detail = std::string("onnx_model_version \"") + VersionName(config_.version) + "\"";
    } else if (j.contains("outputs")) {
      config_.version = Version::kV0;
      detail = "no onnx_model_version; outputs is present, so the loaders take the model for v0";
    } else {
      problems.push_back(
          "no onnx_model_version and no outputs: both loaders throw \"Onnx model version not found in metadata\"");
    }
    f_.Add("onnx_model_version", src, problems, detail);

    if (config_.version == Version::kUnknown) {
      f_.NotChecked("decorate_version", decorate_src, "the version is unknown");
    } else if (config_.version == Version::kV2) {
      f_.Add("decorate_version", decorate_src,
             {"v2 loads, but GNN::decorate of both loaders throws std::logic_error(\"unsupported ONNX metadata "
              "version\") on every jet (and the current loader's constituents.at(\"track_features\") misses v2's "
              "key \"tracks\" first)"},
             "");
    } else if (config_.version == Version::kV0) {
      f_.Add("decorate_version", decorate_src,
             {"v0 is the legacy layout: GNN::decorate reads its float outputs as vectors of length 1 and decorates "
              "no per-constituent outputs; this program's output and run rules follow v1, so it does not vouch for "
              "v0 models: export v1"},
             "");
    } else {
      f_.Add("decorate_version", decorate_src, {}, "GNN::decorate handles v1");
    }
  }

  void CheckOutputNames() {
    const std::string src = Source({{kSaltModel, "SaltModel::determineModelName"},
                                    {kSaltOutput, "SaltModelOutput::getName"},
                                    {kGNN, "GNN::createDecorators"}});
    std::vector<std::string> problems;
    if (config_.version == Version::kV0) {
      const Json* outputs = config_.object && config_.json.contains("outputs") ? &config_.json.at("outputs") : nullptr;
      if (outputs != nullptr && outputs->is_object() && !outputs->empty()) model_name_ = outputs->begin().key();
      f_.Add("output_model_name", src, {}, "v0: the model name is the first key of outputs (" + model_name_ + ")");
    } else {
      std::set<std::string> prefixes;
      std::vector<std::string> bare;
      for (const Port& p : graph_.outputs) {
        const std::size_t pos = p.name.find('_');
        if (pos == std::string::npos) {
          bare.push_back(p.name);
        } else {
          prefixes.insert(p.name.substr(0, pos));
        }
      }
      if (graph_.outputs.empty()) problems.push_back("the model has no outputs");
      if (!bare.empty()) {
        problems.push_back("output(s) " + Join(bare) +
                           " have no '_': SaltModel::determineModelName then names the model UnknownModelName, "
                           "and the track links decoration UnknownModelName_TrackLinks");
      }
      if (prefixes.size() > 1) {
        problems.push_back("the outputs have the model-name prefixes " +
                           Join(std::vector<std::string>(prefixes.begin(), prefixes.end())) +
                           ": SaltModel::determineModelName throws \"model names are not consistent between outputs\"");
      }
      if (problems.empty()) model_name_ = *prefixes.begin();
      f_.Add("output_model_name", src, problems,
             "every output is named " + model_name_ + "_<output>; the model name is " + model_name_);
    }

    // The model name becomes part of every decoration name.
    const std::string name_src = Source({{kSaltModel, "SaltModel::determineModelName"}, {kGNN, "GNN::createDecorators"}});
    if (model_name_.empty()) {
      f_.NotChecked("model_name", name_src, "no model name (output_model_name)");
      return;
    }
    problems.clear();
    std::string detail = "model name " + model_name_;
    if (model_name_.find('-') != std::string::npos) {
      problems.push_back("the model name " + Quote(model_name_) +
                         " contains '-', which ends up in every decoration name (" + model_name_ + "_TrackLinks, ...)");
    }
    if (config_.object && config_.json.contains("model_name")) {
      const Json& declared = config_.json.at("model_name");
      if (!declared.is_string()) {
        problems.push_back("model_name is " + JsonType(declared) + ", not a string");
      } else if (declared.get<std::string>() != model_name_) {
        problems.push_back("gnn_config's model_name is " + Quote(declared.get<std::string>()) +
                           ", but Athena takes the model name from the output names: " + Quote(model_name_));
      } else {
        detail += ", as gnn_config's model_name says";
      }
    } else {
      detail += " (gnn_config has no model_name to compare with)";
    }
    f_.Add("model_name", name_src, problems, detail);
  }

  void CheckOutputTypes() {
    const std::string src = Source({{kSaltOutput, "SaltModelOutput::getOutputType"},
                                    {kSaltModel, "SaltModel::runInference"},
                                    {kGNN, "GNN::createDecorators"},
                                    {kOnnxOutput, "OnnxOutput::getOutputType"},
                                    {kOnnxUtil, "OnnxUtil::runInference"}});
    std::vector<std::string> problems, kinds;
    for (const Port& p : graph_.outputs) {
      if (!p.tensor) {
        problems.push_back(p.name + " is not a tensor");
        continue;
      }
      const std::size_t rank = p.shape.size();
      const std::string what = Describe(p);
      if (p.type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT && rank == 0) {
        kinds.push_back(what + " (jet float)");
      } else if (p.type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT && rank == 1) {
        kinds.push_back(what + " (per-constituent floats)");
      } else if (p.type == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8 && rank == 1) {
        kinds.push_back(what + " (per-constituent chars)");
      } else if (p.type == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8) {
        problems.push_back(what + ": getOutputType makes any int8 output a vector of chars, but runInference "
                                  "throws \"Unsupported tensor shape for INT8 type\" for a rank other than 1");
      } else if (p.type == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32 && rank == 1) {
        problems.push_back(what + ": the current getOutputType makes it VECINT, which GNN::createDecorators rejects "
                                  "(\"Unknown output data type\") and runInference too (\"Unsupported tensor type\")");
      } else {
        problems.push_back(what + ": the loaders handle float32 scalars, float32 [n] and int8 [n] only "
                                  "(GNN::createDecorators throws \"Unknown output data type\")");
      }
    }
    f_.Add("output_types", src, problems, Join(kinds));
  }

  void CheckInputsSchema() {
    const std::string src = Source({{kSaltGraphConfig, "parse_json_graph, get_input_node, get_input"}});
    if (!config_.object) {
      f_.NotChecked("inputs_schema", src, "gnn_config is not a JSON object");
      return;
    }
    std::vector<std::string> problems;
    for (const char* key : {"inputs", "input_sequences"}) {
      std::vector<Node>& nodes = std::string(key) == "inputs" ? config_.inputs : config_.sequences;
      try {
        const Json& list = config_.json.at(key);
        if (!list.is_array()) problems.push_back(std::string(key) + " is " + JsonType(list) + ", not an array");
        std::size_t i = 0;
        for (const Json& node : list) {
          nodes.push_back(ReadNode(node, std::string(key) + "[" + std::to_string(i++) + "]", problems));
        }
      } catch (const std::exception& e) {
        problems.push_back(std::string(key) + ": " + e.what());
      }
    }
    config_.nodes_ok = problems.empty();
    std::vector<std::string> names;
    for (const Node& n : config_.inputs) names.push_back(n.name + " (" + std::to_string(n.variables.size()) + " variables)");
    for (const Node& n : config_.sequences) names.push_back(n.name + " (" + std::to_string(n.variables.size()) + " variables)");
    f_.Add("inputs_schema", src, problems, "inputs and input_sequences read: " + Join(names));
  }

  // OutputNodeProblems checks one entry of outputs as get_output_node
  // (nlohmann) and lwtnn's get_output_node (property tree) read it.
  static void OutputNodeProblems(const std::string& key, const Json& node, std::vector<std::string>& problems) {
    try {
      const Json& labels = node.at("labels");
      for (const Json& label : labels) (void)label.get<std::string>();
      const int index = node.at("node_index").get<int>();
      if (index < 0) throw std::logic_error("output node index is negative");
      if (!labels.is_array()) problems.push_back("outputs." + key + ".labels is " + JsonType(labels) + ", not an array");
      if (!node.at("node_index").is_number_integer()) {
        problems.push_back("outputs." + key + ".node_index is " + JsonType(node.at("node_index")) + ", not an integer");
      }
    } catch (const std::exception& e) {
      problems.push_back("outputs." + key + ": " + e.what());
    }
  }

  void CheckOutputsSchema() {
    const std::string src = Source({{kSaltGraphConfig, "parse_json_graph, get_output_node"},
                                    {kSaltModel, "SaltModel::determineModelName"},
                                    {kLwtnn, "get_output_node"}});
    if (!config_.object) {
      f_.NotChecked("outputs_schema", src, "gnn_config is not a JSON object");
      return;
    }
    std::vector<std::string> problems;
    if (!config_.json.contains("outputs")) {
      if (config_.version == Version::kV0) {
        problems.push_back("v0 without outputs: SaltModel::determineModelName reads the model name from outputs");
      }
      f_.Add("outputs_schema", src, problems, "no outputs key; v1 and v2 take the outputs from the graph");
      return;
    }
    const Json& outputs = config_.json.at("outputs");
    if (!outputs.is_object()) {
      problems.push_back("outputs is " + JsonType(outputs) +
                         ", not an object of {labels: [string], node_index: int} (the current loader's "
                         "parse_json_graph reads outputs whatever onnx_model_version says)");
    }
    // parse_json_graph reads outputs whatever the version.
    try {
      for (const auto& item : outputs.items()) OutputNodeProblems(item.key(), item.value(), problems);
    } catch (const std::exception& e) {
      problems.push_back(std::string("outputs: ") + e.what());
    }
    if (config_.version == Version::kV0 && outputs.is_object() && outputs.empty()) {
      problems.push_back("v0 with empty outputs: SaltModel::determineModelName takes the first key of outputs");
    }
    f_.Add("outputs_schema", src, problems,
           "outputs is an object of " + std::to_string(outputs.size()) + " {labels, node_index} entries");
  }

  void CheckLwtnn() {
    const std::string src = Source({{kOnnxUtil, "OnnxUtil::getLwtConfig"}, {kLwtnn, "parse_json_graph, get_node, get_layer"}});
    if (!config_.object) {
      f_.NotChecked("lwtnn_graph", src, "gnn_config is not a JSON object");
      return;
    }
    const Json& j = config_.json;
    std::vector<std::string> problems;
    for (const char* key : {"inputs", "input_sequences", "nodes", "layers"}) {
      if (!j.contains(key)) {
        problems.push_back(std::string("no key ") + key + ": lwtnn's parse_json_graph throws (ptree get_child(\"" + key +
                           "\"))");
      }
    }
    for (const char* key : {"nodes", "layers"}) {
      if (j.contains(key) && !j.at(key).is_array()) {
        problems.push_back(std::string(key) + " is " + JsonType(j.at(key)) + ", not an array");
      }
    }
    if (j.contains("nodes") && j.at("nodes").is_array()) {
      std::size_t i = 0;
      for (const Json& node : j.at("nodes")) NodeProblems("nodes[" + std::to_string(i++) + "]", node, problems);
    }
    if (j.contains("layers") && j.at("layers").is_array()) {
      std::size_t i = 0;
      for (const Json& layer : j.at("layers")) {
        const std::string where = "layers[" + std::to_string(i++) + "]";
        if (!layer.is_object() || !layer.contains("architecture") || !layer.at("architecture").is_string()) {
          problems.push_back(where + " has no string architecture");
        } else if (!Contains(kLwtnnArchitectures, layer.at("architecture").get<std::string>())) {
          problems.push_back(where + ": lwtnn knows no architecture " + layer.at("architecture").dump());
        }
      }
    }
    std::string detail = "inputs, input_sequences, nodes and layers present";
    if (config_.version == Version::kV0) {
      detail += "; v0: lwtnn reads outputs as outputs_schema checks";
    } else {
      detail += "; OnnxUtil::getLwtConfig sets outputs to {} before lwtnn reads it";
    }
    f_.Add("lwtnn_graph", src, problems, detail);
  }

  static void NodeProblems(const std::string& where, const Json& node, std::vector<std::string>& problems) {
    if (!node.is_object()) {
      problems.push_back(where + " is not an object");
      return;
    }
    if (!node.contains("sources") || !node.at("sources").is_array()) {
      problems.push_back(where + " has no sources array");
    } else {
      for (const Json& s : node.at("sources")) {
        if (!s.is_number_integer() || s.get<int64_t>() < 0) {
          problems.push_back(where + ": source " + s.dump() + " is not an integer >= 0");
        }
      }
    }
    if (!node.contains("type") || !node.at("type").is_string()) {
      problems.push_back(where + " has no string type");
      return;
    }
    const std::string type = node.at("type").get<std::string>();
    const auto it = std::find_if(std::begin(kLwtnnNodeTypes), std::end(kLwtnnNodeTypes),
                                 [&type](const NodeType& t) { return type == t.type; });
    if (it == std::end(kLwtnnNodeTypes)) {
      problems.push_back(where + ": lwtnn knows no node type " + Quote(type));
    } else if (it->key != nullptr && (!node.contains(it->key) || !node.at(it->key).is_number_integer())) {
      problems.push_back(where + ": a " + type + " node needs an integer " + it->key);
    }
  }

  void CheckJetVariables() {
    const std::string nodes_src = Source({{kDataPrep, "dataprep::createGetterConfig"}, {kOldDataPrep, "dataprep::createGetterConfig"}});
    const std::string types_src = Source({{kDataPrep, "dataprep::createGetterConfig, get_input_config"},
                                          {kStringUtils, "str::match_first, str::sub_first"},
                                          {kOldDataPrep, "dataprep::createGetterConfig"}});
    const std::string getters_src = Source({{kDataPrep, "dataprep::createBvarGetters"}, {kGetters, "customJetGetter"}});
    const std::string order_src = Source({{kOldDataPrep, "dataprep::createBvarGetters"}, {kOldGNN, "GNN::decorate"}});
    if (!config_.nodes_ok) {
      for (const auto& [name, src] : Named{{"jet_input_nodes", nodes_src},
                                           {"jet_variable_types", types_src},
                                           {"jet_variable_getters", getters_src},
                                           {"jet_variable_order", order_src}}) {
        f_.NotChecked(name, src, "inputs_schema failed");
      }
      return;
    }
    std::vector<std::string> problems;
    if (config_.inputs.size() > 1) {
      problems.push_back(std::to_string(config_.inputs.size()) +
                         " jet input nodes: createGetterConfig throws \"We don't currently support multiple scalar "
                         "input nodes\"");
    }
    f_.Add("jet_input_nodes", nodes_src, problems,
           config_.inputs.empty() ? "no jet input node: the loaders still build jet_features [1, 0]"
                                  : "one jet input node, " + Quote(config_.inputs.front().name));

    // Types, for both loaders.
    problems.clear();
    std::vector<std::pair<std::string, std::optional<bool>>> vars;  // name, custom getter?
    for (const Node& node : config_.inputs) {
      for (const std::string& v : node.variables) {
        const std::optional<Pattern> type = FirstMatch(Patterns(kJetTypes), v);
        if (!type) {
          problems.push_back(Quote(v) + " matches no jet type pattern (str::match_first throws \"no regex match "
                                        "found for input variable '" + v + "' in type matching\")");
        }
        if (FirstMatch(kJetDefaultFlags, v) == nullptr) {
          problems.push_back(Quote(v) + " matches no default-flag pattern (str::sub_first throws)");
        }
        vars.emplace_back(v, type ? std::optional<bool>(type->custom) : std::nullopt);
      }
    }
    f_.Add("jet_variable_types", types_src, problems, std::to_string(vars.size()) + " jet variables typed");

    // The current loader computes every jet variable with a custom getter.
    problems.clear();
    std::vector<std::string> custom, btag, declared;
    bool all_typed = true;
    for (const auto& [v, is_custom] : vars) {
      declared.push_back(v);
      if (!is_custom) {
        all_typed = false;
        problems.push_back(Quote(v) + " has no type (jet_variable_types)");
      } else if (!*is_custom) {
        btag.push_back(v);
        problems.push_back(Quote(v) + " is read from the b-tagging object: the current loader's createBvarGetters "
                                      "throws \"Unsupported input type\" for anything but a custom getter");
      } else {
        custom.push_back(v);
        if (!Contains(kJetGetters, v)) problems.push_back("customJetGetter throws \"no match for custom getter " + v + "\"");
      }
    }
    f_.Add("jet_variable_getters", getters_src, problems, "custom getters: " + Join(custom));

    // The older loader feeds the b-tagging variables, then the jet's.
    if (!all_typed) {
      f_.NotChecked("jet_variable_order", order_src, "jet_variable_types failed");
      return;
    }
    problems.clear();
    std::vector<std::string> fed = btag;
    fed.insert(fed.end(), custom.begin(), custom.end());
    if (fed != declared) {
      problems.push_back("the older loader's createBvarGetters feeds the b-tagging-object variables before the jet's "
                         "custom-getter ones, [" + Join(fed) + "], but gnn_config declares [" + Join(declared) +
                         "]: the model would read them in the wrong order");
    }
    f_.Add("jet_variable_order", order_src, problems, "fed in the declared order [" + Join(declared) + "]");
  }

  void CheckSequences() {
    const std::string types_src = Source({{kConstituents, "createConstituentsLoaderConfig"},
                                          {kOldConstituents, "createConstituentsLoaderConfig"},
                                          {kOldGNN, "GNN::GNN"}});
    const std::string unique_src = Source({{kEDMLoaderBase, "SaltModelEDMLoaderBase::addVectorLoader"},
                                           {kDataLoader, "GNNDataLoader::getVecInputName"},
                                           {kOldGNN, "GNN::decorate"}});
    const std::string sort_src = Source({{kConstituents, "get_track_input_config, get_electron_input_config"},
                                         {kOldConstituents, "get_track_input_config"}});
    const std::string vars_src = Source({{kConstituents, "createConstituentsLoaderConfig"},
                                         {kOldConstituents, "createConstituentsLoaderConfig"}});
    const std::string getters_src = Source({{kGetters, "getter_utils::buildCustomSeqGetter"}});
    if (!config_.nodes_ok) {
      for (const auto& [name, src] : Named{{"sequence_types", types_src},
                                           {"unique_sequence_types", unique_src},
                                           {"track_sort_selection", sort_src},
                                           {"sequence_variables", vars_src},
                                           {"sequence_custom_getters", getters_src}}) {
        f_.NotChecked(name, src, "inputs_schema failed");
      }
      return;
    }

    std::vector<std::string> problems, found;
    std::map<Kind, std::vector<std::string>> by_kind;
    for (const Node& s : config_.sequences) {
      const KindInfo* k = KindOf(s.name);
      if (k == nullptr) {
        problems.push_back(Quote(s.name) + " contains none of tracks, flows, hits, electrons: "
                                           "createConstituentsLoaderConfig throws \"Unknown constituent type\"");
        continue;
      }
      by_kind[k->kind].push_back(s.name);
      found.push_back(s.name + " (" + k->word + ")");
      if (k->old_types.empty()) {
        problems.push_back(Quote(s.name) + ": the older loader's createConstituentsLoaderConfig knows only tracks, "
                                           "flows and hits and throws \"Unknown constituent type\"");
      } else if (k->kind == Kind::kHits) {
        problems.push_back(Quote(s.name) + ": the older loader's GNN::GNN makes no loader for hits, so runInference "
                                           "finds no " + InputName(*k) + " (std::map::at throws)");
      }
    }
    f_.Add("sequence_types", types_src, problems, Join(found));

    problems.clear();
    for (const auto& [kind, names] : by_kind) {
      if (names.size() > 1) {
        problems.push_back("sequences " + Join(names) + " all become the ONNX input " +
                           InputName(*KindOf(names.front())) + "; the loaders keep the first and drop the others");
      }
    }
    f_.Add("unique_sequence_types", unique_src, problems, "one sequence per constituent type");

    problems.clear();
    found.clear();
    for (const Node& s : config_.sequences) {
      const KindInfo* k = KindOf(s.name);
      if (k == nullptr) continue;
      if (k->kind == Kind::kTracks) {
        const char* order = FirstMatch(kTrackSortOrders, s.name);
        const char* selection = FirstMatch(kTrackSelections, s.name);
        if (order == nullptr) {
          problems.push_back(Quote(s.name) + " matches no track sort order (.*sd0sort, .*ptsort, ...): str::match_first "
                                             "throws in track order matching");
        }
        if (selection == nullptr) {
          problems.push_back(Quote(s.name) + " matches no track selection (.*_r22default_.*, ...): "
                                             "str::match_first throws in track selection matching");
        }
        if (order != nullptr && selection != nullptr) {
          found.push_back(s.name + ": order " + order + ", selection " + selection);
        }
      } else if (k->kind == Kind::kElectrons) {
        if (FirstMatch(kElectronSelections, s.name) == nullptr) {
          problems.push_back(Quote(s.name) + " matches no electron selection (.*_r22default.*): str::match_first "
                                             "throws in electron selection matching");
        }
      }
    }
    f_.Add("track_sort_selection", sort_src, problems, found.empty() ? "no track sequences" : Join(found));

    problems.clear();
    std::size_t n_vars = 0;
    std::vector<std::string> getter_problems, hits_unchecked;
    for (const Node& s : config_.sequences) {
      const KindInfo* k = KindOf(s.name);
      if (k == nullptr) continue;
      for (const std::string& raw : s.variables) {
        ++n_vars;
        const std::string v = VariableName(*k, raw);
        const std::optional<Pattern> type = FirstMatch(k->types, v);
        if (!type) {
          problems.push_back(s.name + ": " + Quote(v) + " matches no " + k->word +
                             " type pattern of the current loader (str::match_first throws)");
        } else if (type->custom && !HasGetter(*k, v)) {
          getter_problems.push_back(s.name + ": " + Quote(v) + " needs a custom getter, and buildCustomSeqGetter throws "
                                                               "\"no match for custom getter " + v + "\"");
        }
        if (type && type->custom && k->kind == Kind::kHits) hits_unchecked.push_back(v);
        if (!k->old_types.empty() && !FirstMatch(k->old_types, v)) {
          problems.push_back(s.name + ": " + Quote(v) + " matches no " + k->word +
                             " type pattern of the older loader (str::match_first throws)");
        }
      }
    }
    f_.Add("sequence_variables", vars_src, problems, std::to_string(n_vars) + " constituent variables typed");
    std::string getters_detail = "every custom-getter variable has a getter";
    if (!hits_unchecked.empty()) getters_detail += " (hit variables not checked: " + Join(hits_unchecked) + ")";
    f_.Add("sequence_custom_getters", getters_src, getter_problems, getters_detail);
  }

  void CheckOnnxInputs() {
    const std::string names_src = Source({{kDataLoader, "GNNDataLoader::GNNDataLoader, getVecInputName"},
                                          {kSaltModel, "SaltModel::runInference"},
                                          {kOldGNN, "GNN::decorate"}});
    const std::string shapes_src = Source({{kEDMLoaderBase, "SaltModelEDMLoaderBase::loadInputs"},
                                           {kGetters, "SeqGetter::getFeats"},
                                           {kSaltModel, "SaltModel::runInference"}});
    if (!config_.nodes_ok) {
      f_.NotChecked("onnx_input_names", names_src, "inputs_schema failed");
      f_.NotChecked("onnx_input_shapes", shapes_src, "inputs_schema failed");
      return;
    }
    const auto built = LoaderInputs();
    std::vector<std::string> problems, names;
    std::set<std::string> in_model;
    for (const Port& p : graph_.inputs) {
      in_model.insert(p.name);
      names.push_back(p.name);
      if (built.count(p.name) == 0) {
        std::vector<std::string> known;
        for (const auto& [name, spec] : built) known.push_back(name);
        problems.push_back("the model reads " + Quote(p.name) + ", which the loaders do not build (they build " +
                           Join(known) + "): runInference's gnn_inputs.at(\"" + p.name + "\") throws std::out_of_range");
      }
    }
    for (const auto& [name, spec] : built) {
      if (in_model.count(name) == 0) {
        problems.push_back("the loaders build " + Quote(name) + " from gnn_config, but the model has no such input");
      }
    }
    f_.Add("onnx_input_names", names_src, problems, "inputs " + Join(names) + ", as the loaders build them");

    problems.clear();
    names.clear();
    for (const Port& p : graph_.inputs) {
      const auto it = built.find(p.name);
      if (it == built.end()) continue;
      const auto& [sequence, vars] = it->second;
      const std::string want = sequence ? "float32 [?, " + std::to_string(vars) + "]" : "float32 [1, " + std::to_string(vars) + "]";
      bool ok = p.tensor && p.type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT && p.shape.size() == 2 &&
                p.shape[1] == static_cast<int64_t>(vars);
      if (ok && sequence) ok = p.shape[0] < 0;
      if (ok && !sequence) ok = p.shape[0] == 1 || p.shape[0] < 0;
      if (!ok) {
        problems.push_back(Describe(p) + ": the loaders feed " + want + " (" + std::to_string(vars) +
                           " variables in gnn_config" + (sequence ? ", any number of constituents" : "") + ")");
      } else {
        names.push_back(Describe(p));
      }
    }
    f_.Add("onnx_input_shapes", shapes_src, problems, Join(names));
  }

  void CheckTracks() {
    const std::string src = Source({{kGNN, "GNN::decorate, GNN::createDecorators"}, {kOldGNN, "GNN::decorate"}});
    if (!config_.nodes_ok) {
      f_.NotChecked("tracks_sequence", src, "inputs_schema failed");
      return;
    }
    const bool tracks = std::any_of(config_.sequences.begin(), config_.sequences.end(), [](const Node& s) {
      const KindInfo* k = KindOf(s.name);
      return k != nullptr && k->kind == Kind::kTracks;
    });
    std::vector<std::string> problems;
    if (!tracks) {
      problems.push_back("no tracks sequence: the current loader's GNN::decorate reads "
                         "constituents.at(\"track_features\") for every jet, which throws std::out_of_range");
      if (HasPerConstituentOutputs()) {
        problems.push_back("both loaders decorate per-constituent outputs beside " +
                           (model_name_.empty() ? std::string("<model>") : model_name_) +
                           "_TrackLinks, links to the input tracks, which need a tracks sequence");
      }
    }
    f_.Add("tracks_sequence", src, problems,
           HasPerConstituentOutputs() ? "a tracks sequence, which the per-constituent outputs' track links point into"
                                      : "a tracks sequence");
  }

  void CheckFlipNames() {
    const std::string src = Source({{kDataPrep, "dataprep::getNameFlippers"},
                                    {kGNN, "GNN::createDecorators"},
                                    {kOldDataPrep, "dataprep::getNameFlippers"}});
    std::vector<std::string> names;
    for (const Port& p : graph_.outputs) names.push_back(p.name);
    if (HasPerConstituentOutputs() && !model_name_.empty()) names.push_back(model_name_ + "_TrackLinks");
    std::vector<std::string> problems;
    for (const std::string& n : names) {
      if (FirstMatch(kFlipNames, n) == nullptr) {
        problems.push_back(Quote(n) + " matches no flip-tagger renaming of the current loader");
      } else if (FirstMatch(kOldFlipNames, n) == nullptr) {
        problems.push_back(Quote(n) + " matches no flip-tagger renaming of the older loader (GN1*, GN2* only)");
      }
    }
    if (!problems.empty()) {
      problems.push_back("str::sub_first throws for these when the tagger is scheduled in a flip configuration "
                         "(FlipTagConfig other than STANDARD); standard taggers are unaffected");
    }
    f_.Add("flip_tagger_names", src, problems, "every decoration name can be renamed for flip taggers", true);
  }

  const Graph& graph_;
  Findings& f_;
  Config config_;
  std::string model_name_;
};

// ---------------------------------------------------------------------------
// Running the model.

// Values returns n deterministic pseudo-random values in [-1, 1).
std::vector<float> Values(std::size_t n, std::mt19937& rng) {
  std::vector<float> out(n);
  for (float& v : out) v = static_cast<float>(rng() >> 8) * (2.0f / 16777216.0f) - 1.0f;
  return out;
}

// RunOnce runs the model as SaltModel::runInference does, every sequence
// with n constituents, and checks what it returns.
OrderedJson RunOnce(Ort::Session& session, const Graph& graph,
                    const std::map<std::string, std::pair<bool, std::size_t>>& built, int64_t n) {
  OrderedJson run = {{"constituents", n}, {"shapes", OrderedJson::object()}, {"ok", false}, {"detail", ""}};
  // What the loaders build: jet [1, vars] and sequences [n, vars].
  std::mt19937 rng(static_cast<std::mt19937::result_type>(1000 + n));
  std::map<std::string, std::pair<std::vector<float>, std::vector<int64_t>>> inputs;
  for (const auto& [name, spec] : built) {
    const auto& [sequence, vars] = spec;
    std::vector<int64_t> shape = {sequence ? n : 1, static_cast<int64_t>(vars)};
    inputs[name] = {Values(static_cast<std::size_t>(shape[0]) * vars, rng), shape};
    run["shapes"][name] = shape;
  }
  std::vector<std::string> problems;
  Ort::MemoryInfo memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  std::vector<Ort::Value> tensors;
  std::vector<const char*> input_names, output_names;
  for (const Port& p : graph.inputs) {
    const auto it = inputs.find(p.name);
    if (it == inputs.end()) {
      run["detail"] = "runInference's gnn_inputs.at(\"" + p.name + "\") throws std::out_of_range";
      return run;
    }
    auto& [values, shape] = it->second;
    // As runInference does: the vector's own data pointer, even when empty.
    tensors.push_back(Ort::Value::CreateTensor<float>(memory, values.data(), values.size(), shape.data(), shape.size()));
    input_names.push_back(p.name.c_str());
  }
  for (const Port& p : graph.outputs) output_names.push_back(p.name.c_str());
  std::vector<Ort::Value> outputs;
  try {
    outputs = session.Run(Ort::RunOptions{nullptr}, input_names.data(), tensors.data(), tensors.size(),
                          output_names.data(), output_names.size());
  } catch (const Ort::Exception& e) {
    run["detail"] = std::string("Ort::Session::Run throws: ") + e.what();
    return run;
  }
  std::size_t scalars = 0, vectors = 0;
  for (std::size_t i = 0; i < outputs.size() && i < graph.outputs.size(); ++i) {
    const std::string& name = graph.outputs[i].name;
    if (!outputs[i].IsTensor()) {
      problems.push_back(name + " is not a tensor");
      continue;
    }
    auto info = outputs[i].GetTensorTypeAndShapeInfo();
    const auto type = info.GetElementType();
    const std::size_t rank = info.GetShape().size();
    const std::size_t count = info.GetElementCount();
    if (type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT && rank == 0) {
      ++scalars;
      const float v = outputs[i].GetTensorData<float>()[0];
      if (!std::isfinite(v)) problems.push_back(name + " is " + std::to_string(v) + ", not finite");
    } else if ((type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT || type == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8) && rank == 1) {
      ++vectors;
      if (count != static_cast<std::size_t>(n)) {
        problems.push_back(name + " has " + std::to_string(count) + " values for " + std::to_string(n) +
                           " tracks; the track links decoration has one per track");
      }
      if (type == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8) {
        const int8_t* data = outputs[i].GetTensorData<int8_t>();
        for (std::size_t k = 0; k < count; ++k) {
          if (data[k] < -1) {
            problems.push_back(name + "[" + std::to_string(k) + "] is " + std::to_string(data[k]) + ", below -1");
            break;
          }
        }
      }
    } else {
      problems.push_back(name + " is " + TypeName(type) + " of rank " + std::to_string(rank) +
                         ": runInference throws (unsupported type or shape)");
    }
  }
  run["ok"] = problems.empty();
  run["detail"] = problems.empty() ? "ran; " + std::to_string(scalars) + " finite scalars, " + std::to_string(vectors) +
                                         " per-constituent output(s) of " + std::to_string(n) + " values"
                                   : Join(problems, "; ");
  return run;
}

int Check(const std::string& path) {
  // As SaltModel::SaltModel sets up its session.
  Ort::Env env(ORT_LOGGING_LEVEL_FATAL, "");
  Ort::SessionOptions options;
  options.SetIntraOpNumThreads(1);
  options.SetLogSeverityLevel(4);
  options.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_EXTENDED);
  options.DisableCpuMemArena();
  std::optional<Ort::Session> session;
  Graph graph;
  try {
    session.emplace(env, path.c_str(), options);
    graph = ReadGraph(*session);
  } catch (const Ort::Exception& e) {
    std::cerr << "salt-ort-athena-check: " << path << ": ONNX Runtime cannot open the model: " << e.what() << "\n";
    return kExitCannotCheck;
  }

  Findings findings;
  Checker checker(graph, findings);
  checker.Run();

  OrderedJson runs = OrderedJson::array();
  const auto built = checker.LoaderInputs();
  bool runs_ok = true;
  for (int64_t n : {0, 1, 40, 200}) {
    OrderedJson run;
    if (built.empty()) {
      run = {{"constituents", n}, {"shapes", OrderedJson::object()}, {"ok", false},
             {"detail", "not run: gnn_config does not say what the loaders feed (inputs_schema)"}};
    } else {
      run = RunOnce(*session, graph, built, n);
    }
    runs_ok = runs_ok && run["ok"].get<bool>();
    runs.push_back(run);
  }

  const bool pass = findings.Pass() && runs_ok;
  OrderedJson report;
  report["model"] = path;
  report["session"] = {{"intra_op_threads", 1},
                       {"graph_optimization_level", "ORT_ENABLE_EXTENDED"},
                       {"cpu_mem_arena", false},
                       {"log_severity_level", 4}};
  const Config& config = checker.config();
  report["onnx_model_version"] = config.object ? VersionName(config.version) : "unknown";
  report["model_name"] = checker.model_name();
  report["pass"] = pass;
  report["rules"] = findings.ToJson();
  report["runs"] = runs;
  std::cout << report.dump(2, ' ', false, OrderedJson::error_handler_t::replace) << "\n";
  return pass ? kExitPass : kExitFail;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: " << argv[0] << " model.onnx\n";
    return kExitCannotCheck;
  }
  try {
    return Check(argv[1]);
  } catch (const std::exception& e) {
    std::cerr << "salt-ort-athena-check: " << argv[1] << ": " << e.what() << "\n";
    return kExitCannotCheck;
  }
}
