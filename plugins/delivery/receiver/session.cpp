#include "session.hpp"

#include <memory>
#include <set>

#include <tdx/secret_protocol.hpp>

namespace tdx::receiver {

namespace sp = secret_protocol;

namespace {
constexpr std::uint32_t k_max_hello = 64;

std::string hex_byte(std::uint8_t b) {
  static const char hex[] = "0123456789abcdef";
  return std::string("0x") + hex[b >> 4] + hex[b & 15];
}
}  // namespace

SessionOutcome serve_session(int in_fd, int out_fd, const Root& root, const SessionOptions& options, const Log& log) {
  SessionOutcome out;
  sp::Deadline deadline(options.idle, options.total);
  std::vector<std::unique_ptr<StagedSecret>> staged;
  std::set<std::string> seen;
  std::uint64_t received = 0;
  auto send = [&](sp::FrameType type, const std::string& payload) {
    sp::write_frame(out_fd, type, payload, deadline, options.interrupted);
  };
  try {
    sp::Frame hello = sp::read_frame(in_fd, deadline, k_max_hello, options.interrupted);
    if (hello.type != sp::FrameType::hello)
      throw sp::ProtocolError(sp::ErrorCode::protocol, "the session must start with a hello frame");
    std::uint16_t version = sp::decode_hello(hello.payload);
    if (version != sp::k_version)
      throw sp::ProtocolError(sp::ErrorCode::version,
                              "the client speaks protocol version " + std::to_string(version) +
                                  "; this receiver speaks version " + std::to_string(sp::k_version) +
                                  " (use a tdx that matches the image)");
    std::vector<DeclaredSecret> declared;
    try {
      declared = load_secrets_list(options.config);
    } catch (const ReceiverError& e) {
      throw sp::ProtocolError(sp::ErrorCode::config, e.what());
    }
    std::vector<sp::Declared> offered;
    for (const auto& d : declared) offered.push_back({d.name, d.max_bytes});
    send(sp::FrameType::welcome, sp::encode_welcome(offered));

    for (;;) {
      sp::Frame frame = sp::read_frame(in_fd, deadline, sp::k_max_frame, options.interrupted);
      received += 5 + frame.payload.size();
      if (received > sp::k_max_session)
        throw sp::ProtocolError(sp::ErrorCode::too_large, "the session sent more than " +
                                                              std::to_string(sp::k_max_session) + " bytes");
      if (frame.type == sp::FrameType::secret) {
        auto [name, value] = sp::decode_secret(frame.payload);
        // A malformed name is not quoted back: it might be anything the client had.
        if (!sp::is_valid_name(name))
          throw sp::ProtocolError(sp::ErrorCode::unknown_name,
                                  "a secret frame carries a name that is not [A-Za-z_][A-Za-z0-9_]* (" +
                                      std::to_string(name.size()) + " bytes); refused");
        const DeclaredSecret* secret = find_secret(declared, name);
        if (!secret)
          throw sp::ProtocolError(sp::ErrorCode::unknown_name,
                                  name + " is not declared in " + options.config + "; refused");
        if (!seen.insert(name).second)
          throw sp::ProtocolError(sp::ErrorCode::duplicate, name + " was sent twice in one session");
        if (value.size() > secret->max_bytes)
          throw sp::ProtocolError(sp::ErrorCode::too_large,
                                  name + ": the value has " + std::to_string(value.size()) +
                                      " bytes, more than its cap of " + std::to_string(secret->max_bytes));
        try {
          staged.push_back(std::make_unique<StagedSecret>(root, *secret, value));
        } catch (const ReceiverError& e) {
          throw sp::ProtocolError(sp::ErrorCode::store_failed, e.what());
        }
        send(sp::FrameType::accepted, sp::encode_accepted(name, static_cast<std::uint32_t>(value.size())));
      } else if (frame.type == sp::FrameType::commit) {
        if (!frame.payload.empty()) throw sp::ProtocolError(sp::ErrorCode::protocol, "a commit frame carries a payload");
        for (auto& s : staged) {
          try {
            s->commit();
          } catch (const ReceiverError& e) {
            std::string stored;
            for (const auto& n : out.stored) stored += (stored.empty() ? "" : ", ") + n;
            throw sp::ProtocolError(sp::ErrorCode::store_failed,
                                    std::string(e.what()) + (stored.empty() ? "" : " (already stored: " + stored + ")"));
          }
          out.stored.push_back(s->name());
          const DeclaredSecret* d = find_secret(declared, s->name());
          log("stored " + s->name() + " -> " + root.display(d->dest));
        }
        out.missing = not_in_place(inspect(root, declared));
        sp::Report report{out.stored, out.missing};
        out.committed = true;
        send(sp::FrameType::report, sp::encode_report(report));
        return out;
      } else {
        throw sp::ProtocolError(sp::ErrorCode::protocol,
                                "unexpected frame type " + hex_byte(static_cast<std::uint8_t>(frame.type)));
      }
    }
  } catch (const sp::EndOfStream&) {
    out.error = staged.empty() ? "the client closed the connection before commit"
                               : "the client closed the connection before commit; the " +
                                     std::to_string(staged.size()) + " secret(s) it sent were not stored";
  } catch (const sp::ProtocolError& e) {
    out.error = e.what();
    if (!out.committed) {
      try {
        sp::Deadline brief(std::chrono::milliseconds(2000), std::chrono::milliseconds(2000));
        sp::write_frame(out_fd, sp::FrameType::error, sp::encode_error(e.code(), e.what()), brief);
      } catch (const sp::ProtocolError&) {
      }
    }
    std::size_t not_stored = staged.size() - out.stored.size();
    if (not_stored > 0 && !out.committed)
      out.error += "; " + std::to_string(not_stored) + " staged secret(s) were not stored";
  }
  while (!staged.empty()) staged.pop_back();  // newest first, so folders they share are emptied last
  return out;
}

}  // namespace tdx::receiver
