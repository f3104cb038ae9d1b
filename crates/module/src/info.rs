//! The `auscout` section of `INFO` (fields appear as `auscout_<name>`).

use redis_module::{raw, InfoContext, RedisResult, Status};

use crate::stats;

#[linkme::distributed_slice(redis_module::server_events::INFO_COMMAND_HANDLER_LIST)]
static AUSCOUT_INFO: fn(&InfoContext, bool) -> RedisResult<()> = add_info;

fn add_info(ctx: &InfoContext, _for_crash_report: bool) -> RedisResult<()> {
    let s = stats::snapshot();
    // `None` names the section after the module: `# auscout`. Redis answers
    // `Err` when the section was not asked for (e.g. `INFO server`).
    if raw::add_info_section(ctx.ctx, None) != Status::Ok {
        return Ok(());
    }
    raw::add_info_field_long_long(ctx.ctx, "indexes", s.indexes);
    raw::add_info_field_long_long(ctx.ctx, "tracks", s.tracks);
    raw::add_info_field_long_long(ctx.ctx, "frames", s.frames);
    raw::add_info_field_unsigned_long_long(ctx.ctx, "lookups", s.lookups);
    raw::add_info_field_unsigned_long_long(ctx.ctx, "lookup_usec", s.lookup_micros);
    let avg = if s.lookups == 0 {
        0.0
    } else {
        s.lookup_micros as f64 / s.lookups as f64
    };
    raw::add_info_field_double(ctx.ctx, "lookup_avg_usec", avg);
    Ok(())
}
